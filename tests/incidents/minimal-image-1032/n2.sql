SET SESSION sql_log_bin = 0;
DELETE FROM slim.profiles WHERE id = 7;
