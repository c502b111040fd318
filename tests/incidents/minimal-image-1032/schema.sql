-- binlog_row_image=MINIMAL: the update's before image carries only the primary key, its after
-- image only the changed column. The missing row is rebuilt from the source's current row.
CREATE DATABASE slim;
CREATE TABLE slim.profiles (
  id INT NOT NULL PRIMARY KEY,
  nick VARCHAR(40) NOT NULL,
  bio TEXT,
  score DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO slim.profiles VALUES (7, 'seven', 'long bio', 1.5), (8, 'eight', NULL, 2.25);
