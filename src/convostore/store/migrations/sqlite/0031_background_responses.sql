-- Background responses (issue 17): see the PostgreSQL migration of the same number.
ALTER TABLE responses ADD COLUMN expires_at REAL;
