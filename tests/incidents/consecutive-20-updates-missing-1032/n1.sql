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
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 1;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 2;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 3;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 4;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 5;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 6;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 7;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 8;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 9;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 10;
INSERT INTO queue.items VALUES (50, 0, 'stream');
UPDATE queue.items SET qty = 1 WHERE id = 50;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 11;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 12;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 13;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 14;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 15;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 16;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 17;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 18;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 19;
UPDATE queue.items SET qty = qty + 100, label = 'updated' WHERE id = 20;
