INSERT INTO metrics.samples VALUES (25, 0.000);
