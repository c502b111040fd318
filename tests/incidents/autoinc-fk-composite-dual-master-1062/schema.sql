-- Two different orders on one AUTO_INCREMENT id, and a child table whose composite FOREIGN KEY
-- (order_id, region) references (id, region) of the orders (a UNIQUE key holding the id). Both
-- orders get id 3 in region 'eu'; each node then adds an item of its order (a transaction of
-- its own): both items reference (3, 'eu'), so rekey must not be offered.
CREATE DATABASE fkcomposite;
CREATE TABLE fkcomposite.orders (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  region CHAR(2) NOT NULL,
  customer VARCHAR(64) NOT NULL,
  UNIQUE KEY uk_id_region (id, region)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE fkcomposite.order_items (
  order_id INT UNSIGNED NOT NULL,
  region CHAR(2) NOT NULL,
  sku VARCHAR(32) NOT NULL,
  PRIMARY KEY (order_id, region, sku),
  CONSTRAINT fk_items_order_region FOREIGN KEY (order_id, region)
    REFERENCES fkcomposite.orders (id, region) ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO fkcomposite.orders (region, customer) VALUES ('eu', 'carol'), ('us', 'dave');
