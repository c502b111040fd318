SET SESSION binlog_row_image = 'MINIMAL';
UPDATE slim.profiles SET score = 9.75 WHERE id = 7;
