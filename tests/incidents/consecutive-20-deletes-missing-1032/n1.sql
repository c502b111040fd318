SET SESSION sql_log_bin = 0;
INSERT INTO queue.items VALUES
  (1, 1, 'unlogged'),
  (2, 2, 'unlogged'),
  (3, 3, 'unlogged'),
  (4, 4, 'unlogged'),
  (5, 5, 'unlogged'),
  (6, 6, 'unlogged'),
  (7, 7, 'unlogged'),
  (8, 8, 'unlogged'),
  (9, 9, 'unlogged'),
  (10, 10, 'unlogged'),
  (11, 11, 'unlogged'),
  (12, 12, 'unlogged'),
  (13, 13, 'unlogged'),
  (14, 14, 'unlogged'),
  (15, 15, 'unlogged'),
  (16, 16, 'unlogged'),
  (17, 17, 'unlogged'),
  (18, 18, 'unlogged'),
  (19, 19, 'unlogged'),
  (20, 20, 'unlogged');
SET SESSION sql_log_bin = 1;
DELETE FROM queue.items WHERE id = 1;
DELETE FROM queue.items WHERE id = 2;
DELETE FROM queue.items WHERE id = 3;
DELETE FROM queue.items WHERE id = 4;
DELETE FROM queue.items WHERE id = 5;
DELETE FROM queue.items WHERE id = 6;
DELETE FROM queue.items WHERE id = 7;
DELETE FROM queue.items WHERE id = 8;
DELETE FROM queue.items WHERE id = 9;
DELETE FROM queue.items WHERE id = 10;
DELETE FROM queue.items WHERE id = 11;
DELETE FROM queue.items WHERE id = 12;
DELETE FROM queue.items WHERE id = 13;
DELETE FROM queue.items WHERE id = 14;
DELETE FROM queue.items WHERE id = 15;
DELETE FROM queue.items WHERE id = 16;
DELETE FROM queue.items WHERE id = 17;
DELETE FROM queue.items WHERE id = 18;
DELETE FROM queue.items WHERE id = 19;
DELETE FROM queue.items WHERE id = 20;
UPDATE queue.items SET qty = 1 WHERE id = 100;
