-- Twenty transactions in a row, each inserting a key the replica already has: a blind skip
-- loop stops and starts twenty times; a batch repair reads ahead and does it once.
CREATE DATABASE queue;
CREATE TABLE queue.jobs (
  id INT NOT NULL PRIMARY KEY,
  owner VARCHAR(20) NOT NULL
) ENGINE=InnoDB;
