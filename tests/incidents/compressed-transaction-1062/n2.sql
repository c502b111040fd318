INSERT INTO zipped.docs VALUES (3, 'replica');
