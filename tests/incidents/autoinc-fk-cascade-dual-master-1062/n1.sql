INSERT INTO fkcascade.orders (customer, total) VALUES ('alice', 12.50);
INSERT INTO fkcascade.order_items VALUES (LAST_INSERT_ID(), 'sku-alice', 1);
