INSERT INTO shop_sjis.orders VALUES ('注文-001', '山田太郎', 'ソフト表示機能（本社）');
