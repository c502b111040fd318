SET SESSION sql_log_bin = 0;
DELETE FROM docs.profiles WHERE id = 1;
