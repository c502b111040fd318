INSERT INTO eo.staff VALUES (42, 'written on the replica');
FLUSH BINARY LOGS;
