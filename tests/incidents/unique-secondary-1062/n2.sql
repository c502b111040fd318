INSERT INTO shop.users (id, email, name) VALUES (900, 'ana@example.com', 'Ana (signed up on the replica)');
INSERT INTO shop.orders VALUES (5001, 900);
