SET SESSION sql_log_bin = 0;
INSERT INTO shop_binary.tokens VALUES (0x00FF8000, 'replica', 0xFEFF00C0);
