INSERT INTO shop_utf8mb4.orders VALUES ('𠮷野家-🍜-001', '𠮷田', '本店から 🚚');
