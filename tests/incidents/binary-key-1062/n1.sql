INSERT INTO shop_binary.tokens VALUES (0x00FF8000, 'source', 0x80FF0000);
