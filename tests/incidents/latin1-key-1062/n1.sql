INSERT INTO shop_latin1.clients VALUES ('Société-€1', 'Chloé');
