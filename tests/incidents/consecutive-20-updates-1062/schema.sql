-- Twenty transactions in a row, each updating a row to a code (a UNIQUE key) that a row of the
-- replica's own already holds; between them, updates that leave the code alone (the replica's
-- row holding that code is the updated row itself: no conflict). A batch repair reads ahead
-- and resolves all twenty in one stop/start.
CREATE DATABASE queue;
CREATE TABLE queue.slots (
  id INT NOT NULL PRIMARY KEY,
  code VARCHAR(20) NOT NULL,
  note VARCHAR(20) NOT NULL,
  UNIQUE KEY code (code)
) ENGINE=InnoDB;
INSERT INTO queue.slots VALUES
  (1, 'old-1', 'source'),
  (2, 'old-2', 'source'),
  (3, 'old-3', 'source'),
  (4, 'old-4', 'source'),
  (5, 'old-5', 'source'),
  (6, 'old-6', 'source'),
  (7, 'old-7', 'source'),
  (8, 'old-8', 'source'),
  (9, 'old-9', 'source'),
  (10, 'old-10', 'source'),
  (11, 'old-11', 'source'),
  (12, 'old-12', 'source'),
  (13, 'old-13', 'source'),
  (14, 'old-14', 'source'),
  (15, 'old-15', 'source'),
  (16, 'old-16', 'source'),
  (17, 'old-17', 'source'),
  (18, 'old-18', 'source'),
  (19, 'old-19', 'source'),
  (20, 'old-20', 'source');
