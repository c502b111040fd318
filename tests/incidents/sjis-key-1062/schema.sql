-- A Japanese shop's order table in Shift_JIS (MySQL's sjis). Several values hold characters
-- whose second byte is 0x5C, the ASCII backslash ('ソ' = 0x835C, '表' = 0x955C, '能' = 0x945C):
-- a tool that escapes or splits the bytes instead of the characters corrupts them.
CREATE DATABASE shop_sjis DEFAULT CHARACTER SET sjis;
CREATE TABLE shop_sjis.orders (
  order_no VARCHAR(32) NOT NULL PRIMARY KEY,
  customer VARCHAR(32) NOT NULL,
  note VARCHAR(64)
) ENGINE=InnoDB DEFAULT CHARSET=sjis;
INSERT INTO shop_sjis.orders VALUES ('注文-000', '佐藤一郎', '発送済み');
