-- One response in flight per conversation (issue 10): see the PostgreSQL migration of
-- the same number. Every statement on it runs inside BEGIN IMMEDIATE, under the
-- database write lock; expires_at is the servers' clock (one machine shares one file).
CREATE TABLE conversation_leases (
    conv INTEGER PRIMARY KEY REFERENCES conversations (pk) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
