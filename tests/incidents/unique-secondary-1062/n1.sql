INSERT INTO shop.users (id, email, name) VALUES (17, 'ana@example.com', 'Ana');
