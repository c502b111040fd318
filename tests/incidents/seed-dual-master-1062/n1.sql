INSERT INTO zeus.xinyan_cache VALUES
  ('b98e4fab203607559fc5347b60cb64a41cf50a79650fbda3a1a4be5a1cfd16d9', '{"score": 712, "src": "db01"}', 1, '2019-10-29 03:29:51.885616');
