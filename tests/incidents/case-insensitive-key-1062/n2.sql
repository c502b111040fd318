SET SESSION sql_log_bin = 0;
INSERT INTO crm_ci.users VALUES ('Alice', 'replica');
