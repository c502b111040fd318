INSERT INTO hr.staff VALUES (42, 'written on the source');
