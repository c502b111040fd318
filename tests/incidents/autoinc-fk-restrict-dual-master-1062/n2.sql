INSERT INTO fkrestrict.orders (customer, total) VALUES ('bob', 42.00);
INSERT INTO fkrestrict.order_items VALUES (LAST_INSERT_ID(), 'sku-bob', 2);
