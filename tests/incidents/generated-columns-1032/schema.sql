CREATE DATABASE orders;
CREATE TABLE orders.lines (
  id INT NOT NULL PRIMARY KEY,
  qty INT NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  total DECIMAL(12,2) AS (qty * price) STORED,
  label VARCHAR(40) AS (CONCAT('line-', id)) VIRTUAL
) ENGINE=InnoDB;
INSERT INTO orders.lines (id, qty, price) VALUES (1, 2, 3.50), (2, 1, 9.99);
