-- MySQL logs only the changed path: an Update_rows_partial event.
SET SESSION binlog_row_value_options = 'PARTIAL_JSON';
UPDATE docs.profiles SET doc = JSON_SET(doc, '$.visits', 2) WHERE id = 1;
