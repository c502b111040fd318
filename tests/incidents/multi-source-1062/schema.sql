-- Multi-source: n3 replicates from n1 (channel/connection 'n1') and from n2 ('n2'); each
-- source owns its own database. This is n1's: shop_eu (schema-n2.sql creates n2's shop_us).
CREATE DATABASE shop_eu;
CREATE TABLE shop_eu.orders (
  id INT NOT NULL PRIMARY KEY,
  customer VARCHAR(100) NOT NULL,
  total DECIMAL(10,2) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO shop_eu.orders VALUES (1, 'Jörg', 12.50), (2, 'Ana', 80.00);
