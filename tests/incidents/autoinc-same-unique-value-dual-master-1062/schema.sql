-- Two different rows on one AUTO_INCREMENT id that hold the same value of a second UNIQUE key:
-- the same person signed up on both nodes (same email, the name spelled differently), both
-- rows got id 3. They cannot both exist under any ids, so rekey must not be offered.
CREATE DATABASE uniqsame;
CREATE TABLE uniqsame.customers (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  email VARCHAR(128) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  UNIQUE KEY uk_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO uniqsame.customers (name, email, created_at) VALUES
  ('carol', 'carol@example.com', '2024-03-01 09:00:00.000000'),
  ('dave', 'dave@example.com', '2024-03-01 09:05:00.000000');
