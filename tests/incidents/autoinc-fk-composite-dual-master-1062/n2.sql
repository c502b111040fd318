INSERT INTO fkcomposite.orders (region, customer) VALUES ('eu', 'bob');
INSERT INTO fkcomposite.order_items VALUES (LAST_INSERT_ID(), 'eu', 'sku-bob');
