INSERT INTO shop_big5.orders VALUES ('訂單-001', '王五');
