-- MySQL 8.0.20+ binlog_transaction_compression: the rows arrive inside one zstd-compressed
-- Transaction_payload event. (MariaDB has no such event; the recipe is a plain conflict there.)
CREATE DATABASE zipped;
CREATE TABLE zipped.docs (id INT NOT NULL PRIMARY KEY, body TEXT NOT NULL) ENGINE=InnoDB;
