-- Stored responses (issue 17): GET/DELETE /v1/responses/{id}, input items and
-- previous_response_id chains. See the PostgreSQL migration of the same number.
CREATE TABLE responses (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    user_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    previous_id TEXT,
    root_id TEXT NOT NULL,
    status TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL
);

CREATE UNIQUE INDEX responses_id_owner ON responses (id, project, user_key);

CREATE INDEX responses_root ON responses (root_id);

CREATE INDEX responses_retention ON responses (project, updated_at) WHERE id = root_id;

CREATE TABLE response_items (
    resp INTEGER NOT NULL REFERENCES responses (pk) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    output INTEGER NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    mask INTEGER NOT NULL,
    body BLOB,
    conv INTEGER,
    PRIMARY KEY (resp, seq)
) WITHOUT ROWID;

CREATE UNIQUE INDEX response_items_id ON response_items (resp, output, id);

CREATE INDEX response_items_conv ON response_items (conv, id) WHERE conv IS NOT NULL;

CREATE TRIGGER items_keep_for_responses BEFORE DELETE ON items
WHEN EXISTS (SELECT 1 FROM response_items WHERE conv = old.conv AND id = old.id) BEGIN
    UPDATE response_items SET body = old.body, conv = NULL WHERE conv = old.conv AND id = old.id;
END;
