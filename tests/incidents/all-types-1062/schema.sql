-- Every column type the decoder handles, so the row image decoded from the binlog can be
-- compared value by value with what SELECT returns on the source.
CREATE DATABASE typed;
CREATE TABLE typed.everything (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  dec1 DECIMAL(20,6), dec2 DECIMAL(5,0), f FLOAT, d DOUBLE,
  dt DATE, tm TIME(3), tmn TIME, dtm DATETIME(6), dt0 DATETIME, ts TIMESTAMP(6) NULL, yr YEAR,
  c CHAR(5), vc VARCHAR(30), tx TEXT, l1 VARCHAR(10) CHARACTER SET latin1,
  bn BINARY(4), vb VARBINARY(10), bl BLOB,
  e ENUM('small','medium','large'), st SET('red','green','blue'), bt BIT(10),
  nul INT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
