SET SESSION sql_log_bin = 0;
INSERT INTO shop_sjis.orders VALUES ('注文-001', '鈴木花子', 'ローカルの備考');
