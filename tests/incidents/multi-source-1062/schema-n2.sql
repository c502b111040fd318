-- n2's database, replicated to n3 on channel 'n2'.
CREATE DATABASE shop_us;
CREATE TABLE shop_us.orders (
  id INT NOT NULL PRIMARY KEY,
  customer VARCHAR(100) NOT NULL,
  total DECIMAL(10,2) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO shop_us.orders VALUES (1, 'Bob', 20.00);
