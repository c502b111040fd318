-- MariaDB has no GIPK: the same shape as MySQL's generated one, written out. The key column is
-- INVISIBLE (MariaDB 10.3+), so SELECT * and INSERT without a column list do not see it. Both
-- nodes of the dual-master pair insert a different record while they cannot see each other;
-- both get my_row_id=1 and collide on PRIMARY.
CREATE DATABASE gipk;
CREATE TABLE gipk.signups (
  my_row_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT INVISIBLE PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  email VARCHAR(128) NOT NULL,
  created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
