-- Under a case-insensitive collation 'Alice' and 'alice' are the same key: the duplicate is
-- found by the server's comparison, not by byte equality.
CREATE DATABASE crm_ci;
CREATE TABLE crm_ci.users (
  login VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
) ENGINE=InnoDB;
