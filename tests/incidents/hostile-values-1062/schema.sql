-- Names and values that break naive tools: backticks, spaces, unicode, quotes, backslashes,
-- NULL, raw bytes, emoji, JSON and a 1 MiB blob.
CREATE DATABASE `we``ird db`;
CREATE TABLE `we``ird db`.`tab le ✓` (
  `id ``k``` VARBINARY(16) NOT NULL PRIMARY KEY,
  `näme` VARCHAR(100) CHARACTER SET utf8mb4,
  `quote's "col"` TEXT,
  `raw` BLOB,
  `doc` JSON,
  `big` LONGBLOB,
  `maybe` INT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
