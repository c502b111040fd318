-- A statement-based event: no row image exists, so replmend names the statement and stops
-- (exit 9) instead of guessing key values from the error text.
CREATE DATABASE legacy;
CREATE TABLE legacy.t (id INT NOT NULL PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB;
