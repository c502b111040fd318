-- Two different records, one AUTO_INCREMENT key: a dual-master pair with the default
-- auto_increment_increment=1/offset=1 (no per-node offsets). Both nodes insert a new customer
-- without giving an id while they cannot see each other, so both get the next id (3) and each
-- side's row collides with the other's on PRIMARY. The rows differ in every column but the key.
CREATE DATABASE app;
CREATE TABLE app.customers (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  email VARCHAR(128) NOT NULL,
  created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO app.customers (name, email, created_at) VALUES
  ('carol', 'carol@example.com', '2024-03-01 09:00:00.000000'),
  ('dave', 'dave@example.com', '2024-03-01 09:05:00.000000');
