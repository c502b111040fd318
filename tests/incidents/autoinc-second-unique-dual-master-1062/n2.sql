INSERT INTO uniq2.customers (name, email, created_at) VALUES
  ('bob', 'bob@example.org', '2024-03-02 10:15:00.654321');
