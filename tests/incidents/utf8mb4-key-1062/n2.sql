SET SESSION sql_log_bin = 0;
INSERT INTO shop_utf8mb4.orders VALUES ('𠮷野家-🍜-001', '鈴木', 'ローカル 🏠');
