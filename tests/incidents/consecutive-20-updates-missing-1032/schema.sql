-- Twenty rows the replica never got (written on the source with the binary log off), then
-- twenty transactions in a row updating them; between them, a row the stream creates and then
-- updates (not missing: the stream itself writes it first). A batch repair reads ahead and
-- inserts all twenty missing rows in one stop/start.
CREATE DATABASE queue;
CREATE TABLE queue.items (
  id INT NOT NULL PRIMARY KEY,
  qty INT NOT NULL,
  label VARCHAR(20) NOT NULL
) ENGINE=InnoDB;
