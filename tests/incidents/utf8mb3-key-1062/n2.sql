SET SESSION sql_log_bin = 0;
INSERT INTO shop_utf8mb3.orders VALUES ('Заказ-주문-001', 'Пётр', 'локальная заметка');
