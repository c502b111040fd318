INSERT INTO shop_gbk.orders VALUES ('订单-001', '王五', '来自主库');
