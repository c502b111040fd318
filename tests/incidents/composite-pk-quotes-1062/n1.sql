INSERT INTO inv.stock VALUES ('x-1''q', 7, 40);
