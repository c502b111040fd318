-- The error text joins a composite key with '-' and does not escape quotes: 'x-1'q-7' could be
-- ('x', '1''q-7'), ('x-1''q', 7), ... Only the row image says which.
CREATE DATABASE inv;
CREATE TABLE inv.stock (
  sku VARCHAR(32) NOT NULL,
  bin INT NOT NULL,
  qty INT NOT NULL,
  PRIMARY KEY (sku, bin)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO inv.stock VALUES ('x', 1, 5);
