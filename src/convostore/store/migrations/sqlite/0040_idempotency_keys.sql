-- Idempotency-Key (issue 20): see the PostgreSQL migration of the same number. Written
-- in the savepoint of the write it answers, under the database write lock.
CREATE TABLE idempotency_keys (
    project TEXT NOT NULL,
    user_key TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    answer BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project, user_key, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
