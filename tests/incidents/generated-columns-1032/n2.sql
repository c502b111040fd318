SET SESSION sql_log_bin = 0;
DELETE FROM orders.lines WHERE id = 1;
