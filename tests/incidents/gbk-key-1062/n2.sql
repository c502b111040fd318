SET SESSION sql_log_bin = 0;
INSERT INTO shop_gbk.orders VALUES ('订单-001', '张三', '本地备注');
