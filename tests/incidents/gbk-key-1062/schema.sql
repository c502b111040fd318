-- A Chinese shop's order table in GBK (the seed incident came from one).
CREATE DATABASE shop_gbk DEFAULT CHARACTER SET gbk;
CREATE TABLE shop_gbk.orders (
  order_no VARCHAR(32) NOT NULL PRIMARY KEY,
  customer VARCHAR(32) NOT NULL,
  note VARCHAR(64)
) ENGINE=InnoDB DEFAULT CHARSET=gbk;
INSERT INTO shop_gbk.orders VALUES ('订单-000', '李四', '已发货');
