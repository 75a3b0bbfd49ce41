-- Idempotency-Key (issue 20): the first answer to a POST that carried the header, kept
-- with its owner so a retry with the same key and body gets that answer and changes
-- nothing. Written in the transaction of the write it answers; a request whose key was
-- taken meanwhile rolls its write back on the primary key. fingerprint is a SHA-256 of
-- the method, path, query and body. Records older than --idempotency-hours are ignored
-- by lookups, replaced by a new write with their key, and deleted by the purge
-- (through the created_at index).
CREATE TABLE idempotency_keys (
    project text COLLATE "C" NOT NULL,
    user_key text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    fingerprint bytea NOT NULL,
    answer bytea NOT NULL,
    created_at bigint NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (project, user_key, key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
