-- utf8mb3 (three bytes at most: the BMP only), deprecated on MySQL but still common in old
-- schemas; keys in Cyrillic, Korean and Japanese.
CREATE DATABASE shop_utf8mb3 DEFAULT CHARACTER SET utf8mb3;
CREATE TABLE shop_utf8mb3.orders (
  order_no VARCHAR(32) NOT NULL PRIMARY KEY,
  customer VARCHAR(32) NOT NULL,
  note VARCHAR(64)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3;
INSERT INTO shop_utf8mb3.orders VALUES ('Заказ-주문-000', 'Иван', 'отправлен');
