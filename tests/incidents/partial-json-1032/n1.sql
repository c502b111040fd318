UPDATE docs.profiles SET doc = JSON_SET(doc, '$.visits', 2) WHERE id = 1;
