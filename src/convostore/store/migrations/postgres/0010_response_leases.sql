-- One response in flight per conversation (issue 10): POST /v1/responses with a
-- conversation holds a lease on it from before it calls the model server until its
-- items are appended. A lease is taken only where none is or the last one expired
-- (INSERT … ON CONFLICT DO UPDATE … WHERE expires_at < now), renewed while the response
-- runs, deleted at its end, and checked (locked, after the conversation row) by the
-- append that writes the response back. expires_at is the database's clock, in seconds
-- since the epoch, so every server process on every machine judges expiry alike.
CREATE TABLE conversation_leases (
    conv bigint PRIMARY KEY REFERENCES conversations (pk) ON DELETE CASCADE,
    holder text COLLATE "C" NOT NULL,
    expires_at double precision NOT NULL
);
