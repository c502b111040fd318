-- utf8mb4 with four-byte characters in the key: '𠮷' (U+20BB7, outside the BMP) and an emoji.
CREATE DATABASE shop_utf8mb4 DEFAULT CHARACTER SET utf8mb4;
CREATE TABLE shop_utf8mb4.orders (
  order_no VARCHAR(32) NOT NULL PRIMARY KEY,
  customer VARCHAR(32) NOT NULL,
  note VARCHAR(64)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO shop_utf8mb4.orders VALUES ('𠮷野家-🍜-000', '田中', '済み');
