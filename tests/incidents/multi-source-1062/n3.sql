-- Written on the replica n3 by hand, outside replication: the key n1 is about to use.
SET SESSION sql_log_bin = 0;
INSERT INTO shop_eu.orders VALUES (1001, 'written on n3 by hand', 0.01);
