SET SESSION binlog_transaction_compression = ON;
INSERT INTO zipped.docs VALUES (1, REPEAT('a', 1000)), (2, REPEAT('b', 1000)), (3, REPEAT('c', 1000));
