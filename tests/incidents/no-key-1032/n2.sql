SET SESSION sql_log_bin = 0;
DELETE FROM heap.events WHERE msg = 'ready';
