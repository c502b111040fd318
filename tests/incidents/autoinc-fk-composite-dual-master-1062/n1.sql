INSERT INTO fkcomposite.orders (region, customer) VALUES ('eu', 'alice');
INSERT INTO fkcomposite.order_items VALUES (LAST_INSERT_ID(), 'eu', 'sku-alice');
