-- Conversations and their items, the same logical schema as the SQLite backend.
-- Items are ordered by a per-conversation sequence number handed out from
-- conversations.next_seq under the conversation's row lock; pages are read by keyset
-- on (conv, seq). Ids are ASCII, so they use the "C" collation: byte-wise comparison,
-- independent of the database's locale. Bodies and metadata are bytea so the stored
-- JSON bytes come back unchanged (jsonb would reorder keys).
CREATE TABLE conversations (
    pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text COLLATE "C" NOT NULL,
    project text COLLATE "C" NOT NULL,
    user_key text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    metadata bytea NOT NULL,
    next_seq bigint NOT NULL DEFAULT 0,
    CONSTRAINT conversations_id UNIQUE (id)
);

CREATE INDEX conversations_owner_created ON conversations (project, user_key, created_at);

CREATE TABLE items (
    conv bigint NOT NULL REFERENCES conversations (pk) ON DELETE CASCADE,
    seq bigint NOT NULL,
    id text COLLATE "C" NOT NULL,
    type text COLLATE "C" NOT NULL,
    body bytea NOT NULL,
    mask bigint NOT NULL,
    CONSTRAINT items_conv_seq PRIMARY KEY (conv, seq)
);

CREATE UNIQUE INDEX items_conv_id ON items (conv, id);

CREATE INDEX items_id ON items (id);
