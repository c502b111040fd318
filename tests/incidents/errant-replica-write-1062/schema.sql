-- A write made directly on the replica, with its binary log on (no sql_log_bin=0): the
-- replica's own binlog holds it under its own server_id, then a FLUSH BINARY LOGS puts it in
-- an older file than the current one (the origin search must read past the newest file). On
-- MySQL the statement is logged too (binlog_rows_query_log_events, n2.mysql.sql); MariaDB
-- annotates rows events by default.
CREATE DATABASE hr;
CREATE TABLE hr.staff (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE hr.audit (
  id INT NOT NULL PRIMARY KEY,
  note VARCHAR(64) NOT NULL
) ENGINE=InnoDB;
INSERT INTO hr.staff VALUES (1, 'root');
