CREATE DATABASE shop;
CREATE TABLE shop.users (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email VARCHAR(191) NOT NULL,
  name VARCHAR(100) NOT NULL,
  UNIQUE KEY uk_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
-- A child table with ON DELETE CASCADE: replacing the replica's conflicting user must not
-- delete its orders.
CREATE TABLE shop.orders (
  id INT NOT NULL PRIMARY KEY,
  user_id INT NOT NULL,
  FOREIGN KEY (user_id) REFERENCES shop.users (id) ON DELETE CASCADE
) ENGINE=InnoDB;
