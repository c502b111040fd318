SET SESSION sql_generate_invisible_primary_key = ON;
-- MySQL 8.0.30+ generated invisible primary key (GIPK): the table is created without a primary
-- key and MySQL adds `my_row_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT INVISIBLE PRIMARY KEY`
-- (SELECT * does not show it). Both nodes of the dual-master pair insert a different record
-- while they cannot see each other; both get my_row_id=1 and collide on PRIMARY.
CREATE DATABASE gipk;
CREATE TABLE gipk.signups (
  name VARCHAR(64) NOT NULL,
  email VARCHAR(128) NOT NULL,
  created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
