INSERT INTO fkrestrict.orders (customer, total) VALUES ('alice', 12.50);
INSERT INTO fkrestrict.order_items VALUES (LAST_INSERT_ID(), 'sku-alice', 1);
