SET SESSION sql_log_bin = 0;
INSERT INTO shop_big5.orders VALUES ('訂單-001', '張三');
