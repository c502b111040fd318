SET SESSION binlog_rows_query_log_events = ON;
INSERT INTO hr.staff VALUES (42, 'written on the replica');
FLUSH BINARY LOGS;
INSERT INTO hr.audit VALUES (1, 'a later write in the newest file');
