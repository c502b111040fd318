-- Twenty rows the replica never got (written on the source with the binary log off), then
-- twenty transactions in a row deleting them. A batch repair reads ahead and inserts all twenty
-- in one stop/start, so each delete applies (both nodes end without them, every row journaled).
CREATE DATABASE queue;
CREATE TABLE queue.items (
  id INT NOT NULL PRIMARY KEY,
  qty INT NOT NULL,
  label VARCHAR(20) NOT NULL
) ENGINE=InnoDB;
INSERT INTO queue.items VALUES (100, 0, 'kept');
