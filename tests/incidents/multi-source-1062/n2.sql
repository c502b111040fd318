-- The other source keeps writing: n3's channel 'n2' must apply it.
INSERT INTO shop_us.orders VALUES (2001, 'Carol', 35.00);
