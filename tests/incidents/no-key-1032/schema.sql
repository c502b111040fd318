-- A table with no primary or unique key: a row cannot be identified exactly, so replmend
-- diagnoses, says so, and refuses to change rows.
CREATE DATABASE heap;
CREATE TABLE heap.events (ts DATETIME NOT NULL, msg VARCHAR(50) NOT NULL) ENGINE=InnoDB;
INSERT INTO heap.events VALUES ('2024-01-01 00:00:00', 'boot'), ('2024-01-01 00:00:01', 'ready');
