INSERT INTO shop_utf8mb3.orders VALUES ('Заказ-주문-001', 'Ольга', 'с источника ✓');
