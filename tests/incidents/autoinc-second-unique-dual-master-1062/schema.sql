-- Two different customers on one AUTO_INCREMENT id in a table with a second UNIQUE key
-- (email). Both nodes insert a customer (both get id 3) with different emails: rekey must keep
-- both, which it can only do by deleting the loser's row at id 3 before inserting it under the
-- fresh id (inserted first, it collides with itself on uk_email).
CREATE DATABASE uniq2;
CREATE TABLE uniq2.customers (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  email VARCHAR(128) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  UNIQUE KEY uk_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO uniq2.customers (name, email, created_at) VALUES
  ('carol', 'carol@example.com', '2024-03-01 09:00:00.000000'),
  ('dave', 'dave@example.com', '2024-03-01 09:05:00.000000');
