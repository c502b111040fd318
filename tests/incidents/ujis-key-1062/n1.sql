INSERT INTO shop_ujis.orders VALUES ('受注-001', '山田太郎', 'ｶﾀｶﾅ 丂 本社から');
