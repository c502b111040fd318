INSERT INTO uniqsame.customers (name, email, created_at) VALUES
  ('Pat Lee', 'pat@example.com', '2024-03-02 10:15:00.123456');
