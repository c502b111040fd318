INSERT INTO `we``ird db`.`tab le ✓` VALUES
  (0x00FF27225C60, 'replica 😀', 'it''s a "quote" \\ back', 0x000102FEFF, '{"who": "replica"}', REPEAT('r', 1048576), NULL);
