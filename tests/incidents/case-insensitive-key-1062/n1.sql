INSERT INTO crm_ci.users VALUES ('alice', 'source');
