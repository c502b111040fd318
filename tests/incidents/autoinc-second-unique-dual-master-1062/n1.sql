INSERT INTO uniq2.customers (name, email, created_at) VALUES
  ('alice', 'alice@example.com', '2024-03-02 10:15:00.123456');
