-- Conversations and their items. Items are ordered by a per-conversation sequence
-- number; pages are read by keyset on (conv, seq).
CREATE TABLE conversations (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    user_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    metadata BLOB NOT NULL,
    next_seq INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX conversations_owner_created ON conversations (project, user_key, created_at);

CREATE TABLE items (
    rowid INTEGER PRIMARY KEY,
    conv INTEGER NOT NULL REFERENCES conversations (pk),
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    body BLOB NOT NULL,
    mask INTEGER NOT NULL
);

CREATE UNIQUE INDEX items_conv_seq ON items (conv, seq);

CREATE UNIQUE INDEX items_conv_id ON items (conv, id);

CREATE INDEX items_id ON items (id);
