-- Fails on n3's channel 'n1' with 1062 on PRIMARY.
INSERT INTO shop_eu.orders VALUES (1001, 'Zoë', 149.90);
