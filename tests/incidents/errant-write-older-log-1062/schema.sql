-- A write made directly on the replica (binary log on: an errant GTID), then FLUSH BINARY LOGS,
-- then 2 MiB the source writes and the replica applies (logged in the replica's newest file,
-- not errant), then the source's insert of the same key. The origin search reads the file
-- holding the errant GTID first: a budget under 2 MiB cannot reach it newest first, but names
-- it as a candidate when read first; a budget over the whole log finds it as the writer.
CREATE DATABASE eo;
CREATE TABLE eo.staff (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE eo.bulk (
  id INT NOT NULL PRIMARY KEY,
  pad LONGTEXT NOT NULL
) ENGINE=InnoDB;
INSERT INTO eo.staff VALUES (1, 'root');
