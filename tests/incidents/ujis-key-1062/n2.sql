SET SESSION sql_log_bin = 0;
INSERT INTO shop_ujis.orders VALUES ('受注-001', '鈴木花子', 'ローカルの備考');
