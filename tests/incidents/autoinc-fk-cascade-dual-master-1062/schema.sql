-- Two different orders on one AUTO_INCREMENT id, and a child table whose FOREIGN KEY
-- (ON DELETE CASCADE) references that id. Each node inserts an order (both get id 3),
-- then, in a transaction of its own, an item of it: the items differ (sku) and both reference
-- order 3, so the two orders' items cannot be told apart and rekey must not be offered.
CREATE DATABASE fkcascade;
CREATE TABLE fkcascade.orders (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer VARCHAR(64) NOT NULL,
  total DECIMAL(10,2) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE fkcascade.order_items (
  order_id INT UNSIGNED NOT NULL,
  sku VARCHAR(32) NOT NULL,
  qty INT NOT NULL,
  PRIMARY KEY (order_id, sku),
  CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES fkcascade.orders (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO fkcascade.orders (customer, total) VALUES ('carol', 10.00), ('dave', 20.00);
