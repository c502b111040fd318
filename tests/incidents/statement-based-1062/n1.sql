SET SESSION binlog_format = 'STATEMENT';
INSERT INTO legacy.t VALUES (1, 'source');
