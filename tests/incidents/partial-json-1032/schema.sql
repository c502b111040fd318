CREATE DATABASE docs;
CREATE TABLE docs.profiles (
  id INT NOT NULL PRIMARY KEY,
  doc JSON NOT NULL
) ENGINE=InnoDB;
INSERT INTO docs.profiles VALUES (1, '{"name": "ana", "visits": 1}'), (2, '{"name": "bo", "visits": 5}');
