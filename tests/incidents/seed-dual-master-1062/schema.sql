-- The seed incident (../shared/seed): a dual-master pair, a cache table keyed by a sha256.
CREATE DATABASE zeus;
CREATE TABLE zeus.xinyan_cache (
  id CHAR(64) NOT NULL PRIMARY KEY,
  payload TEXT NOT NULL,
  hits INT UNSIGNED NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO zeus.xinyan_cache VALUES
  ('0000000000000000000000000000000000000000000000000000000000000001', '{"score": 1}', 3, '2019-10-28 10:00:00');
