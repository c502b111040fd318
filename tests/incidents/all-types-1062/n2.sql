INSERT INTO typed.everything (id, vc) VALUES (1, 'replica');
