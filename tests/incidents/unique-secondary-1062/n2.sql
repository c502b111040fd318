INSERT INTO shop.users (id, email, name) VALUES (900, 'ana@example.com', 'Ana (signed up on the replica)');
