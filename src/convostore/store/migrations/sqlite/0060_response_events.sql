-- Streamed background responses (issue 17): see the PostgreSQL migration of the same number.
CREATE TABLE response_events (
    resp INTEGER NOT NULL REFERENCES responses (pk) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    terminal INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL,
    PRIMARY KEY (resp, seq)
) WITHOUT ROWID;

CREATE TRIGGER response_events_deleted AFTER UPDATE OF deleted ON responses
WHEN new.deleted BEGIN
    DELETE FROM response_events WHERE resp = new.pk;
END;
