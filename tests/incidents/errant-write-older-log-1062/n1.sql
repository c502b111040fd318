INSERT INTO eo.bulk VALUES (1, REPEAT('a', 1048576));
INSERT INTO eo.bulk VALUES (2, REPEAT('b', 1048576));
INSERT INTO eo.staff VALUES (42, 'written on the source');
