-- A BINARY(4) primary key holding bytes that are not UTF-8 (0x00FF8000: NUL, 0xFF, a lone
-- continuation byte, and a trailing 0x00 that the row image drops and replmend pads back):
-- shown as hex, compared and repaired byte for byte.
CREATE DATABASE shop_binary;
CREATE TABLE shop_binary.tokens (
  token BINARY(4) NOT NULL PRIMARY KEY,
  owner VARCHAR(32) CHARACTER SET utf8mb4 NOT NULL,
  secret BINARY(4)
) ENGINE=InnoDB;
INSERT INTO shop_binary.tokens VALUES (0x00FF7F00, 'seed', 0xC0C1C2C3);
