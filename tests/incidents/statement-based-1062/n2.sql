INSERT INTO legacy.t VALUES (1, 'replica');
