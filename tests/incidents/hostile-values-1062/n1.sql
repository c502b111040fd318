INSERT INTO `we``ird db`.`tab le ✓` VALUES
  (0x00FF27225C60, 'source 🐬', 'it''s a "quote" \\ back', 0x00FF00, '{"who": "source", "n": [1, 2]}', REPEAT('s', 1048576), 42);
