-- A binary primary key holding bytes that are not UTF-8 (0x00FF80: NUL, 0xFF, a lone
-- continuation byte): shown as hex, compared and repaired byte for byte. The BINARY(4) values
-- do not end in 0x00 on purpose: a row image drops a BINARY value's trailing 0x00 bytes, and
-- replmend does not pad them back yet (a BINARY key ending in 0x00 is not found).
CREATE DATABASE shop_binary;
CREATE TABLE shop_binary.tokens (
  token VARBINARY(16) NOT NULL PRIMARY KEY,
  owner VARCHAR(32) CHARACTER SET utf8mb4 NOT NULL,
  secret BINARY(4)
) ENGINE=InnoDB;
INSERT INTO shop_binary.tokens VALUES (0x00FF7F, 'seed', 0xC0C1C2C3);
