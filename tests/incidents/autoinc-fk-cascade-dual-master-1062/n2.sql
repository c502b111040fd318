INSERT INTO fkcascade.orders (customer, total) VALUES ('bob', 42.00);
INSERT INTO fkcascade.order_items VALUES (LAST_INSERT_ID(), 'sku-bob', 2);
