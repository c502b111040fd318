UPDATE crm.accounts SET status = 'active', balance = 99.99 WHERE id = 18446744073709551615;
