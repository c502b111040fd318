-- The same order table in EUC-JP (MySQL's ujis): two-byte JIS X 0208 kanji, half-width
-- katakana (0x8E + one byte) and a JIS X 0212 kanji ('丂' = 0x8FB0A1, three bytes).
CREATE DATABASE shop_ujis DEFAULT CHARACTER SET ujis;
CREATE TABLE shop_ujis.orders (
  order_no VARCHAR(32) NOT NULL PRIMARY KEY,
  customer VARCHAR(32) NOT NULL,
  note VARCHAR(64)
) ENGINE=InnoDB DEFAULT CHARSET=ujis;
INSERT INTO shop_ujis.orders VALUES ('受注-000', '佐藤一郎', '発送済み');
