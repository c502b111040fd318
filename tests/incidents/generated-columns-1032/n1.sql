UPDATE orders.lines SET qty = 5 WHERE id = 1;
