INSERT INTO shop_binary.tokens VALUES (0x00FF80, 'source', 0x80FF0001);
