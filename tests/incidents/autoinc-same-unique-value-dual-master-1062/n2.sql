INSERT INTO uniqsame.customers (name, email, created_at) VALUES
  ('Patricia Lee', 'pat@example.com', '2024-03-02 10:15:00.654321');
