SET SESSION sql_log_bin = 0;
INSERT INTO shop_latin1.clients VALUES ('Société-€1', 'Zoë');
