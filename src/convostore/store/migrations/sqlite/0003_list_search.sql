-- Issue 7: list conversations, metadata filters, full-text search over item text.
--
-- conversation_metadata holds one row per metadata pair, with the owner and created_at
-- copied in, so a filtered list is one range scan of conversation_metadata_lookup in list
-- order. Triggers keep it in step with conversations.metadata in the same transaction.
-- U+0000 is kept as U+FFFD (SQLite's JSON functions end a string there, PostgreSQL's
-- text cannot hold it); filters are mapped the same way.
CREATE TABLE conversation_metadata (
    conv INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    project TEXT NOT NULL,
    user_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (conv, key)
) WITHOUT ROWID;

CREATE INDEX conversation_metadata_lookup
    ON conversation_metadata (project, user_key, key, value, created_at, conv);

INSERT INTO conversation_metadata (conv, key, value, project, user_key, created_at)
SELECT c.pk, j.key, j.value, c.project, c.user_key, c.created_at
  FROM conversations c, json_each(replace(CAST(c.metadata AS TEXT), '\u0000', '\ufffd')) j;

CREATE TRIGGER conversations_metadata_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO conversation_metadata (conv, key, value, project, user_key, created_at)
    SELECT new.pk, j.key, j.value, new.project, new.user_key, new.created_at
      FROM json_each(replace(CAST(new.metadata AS TEXT), '\u0000', '\ufffd')) j;
END;

CREATE TRIGGER conversations_metadata_update AFTER UPDATE OF metadata ON conversations BEGIN
    DELETE FROM conversation_metadata WHERE conv = old.pk;
    INSERT INTO conversation_metadata (conv, key, value, project, user_key, created_at)
    SELECT new.pk, j.key, j.value, new.project, new.user_key, new.created_at
      FROM json_each(replace(CAST(new.metadata AS TEXT), '\u0000', '\ufffd')) j;
END;

CREATE TRIGGER conversations_metadata_delete AFTER DELETE ON conversations BEGIN
    DELETE FROM conversation_metadata WHERE conv = old.pk;
END;

-- item_text: a contentless FTS5 index of the searchable text of each item, keyed by
-- items.rowid (so newest-first is rowid order). The text of an item (docs/search.md):
-- the `text` of every part typed input_text, output_text, text, summary_text or
-- reasoning_text, the `refusal` of refusal parts, a function_call's `arguments` and a
-- function_call_output's `output` when it is a string; at most 100,000 characters (a NUL
-- character counts as a space).
-- Bodies never change, so the delete trigger recomputes exactly what was indexed.
CREATE VIRTUAL TABLE item_text USING fts5 (
    text, content = '', tokenize = 'unicode61 remove_diacritics 0'
);

CREATE VIEW item_search_text (rowid, text) AS
SELECT i.rowid, substr((
    SELECT group_concat(v, ' ') FROM (
        SELECT json_extract(i.doc, t.path || iif(t.atom = 'refusal', '.refusal', '.text')) AS v
          FROM json_tree(i.doc) t
         WHERE t.key = 'type' AND t.atom IN (
               'input_text', 'output_text', 'text', 'summary_text', 'reasoning_text', 'refusal')
        UNION ALL
        SELECT json_extract(i.doc, '$.arguments')
         WHERE i.type = 'function_call' AND json_type(i.doc, '$.arguments') = 'text'
        UNION ALL
        SELECT json_extract(i.doc, '$.output')
         WHERE i.type = 'function_call_output' AND json_type(i.doc, '$.output') = 'text'
    ) WHERE typeof(v) = 'text'
), 1, 100000)
FROM (
    -- SQLite's JSON functions end a string at U+0000: the escape becomes a space (the
    -- replacement is valid JSON wherever the six characters occur).
    SELECT rowid, type, replace(CAST(body AS TEXT), '\u0000', '\u0020') AS doc FROM items
) i;

INSERT INTO item_text (rowid, text)
SELECT rowid, text FROM item_search_text WHERE text IS NOT NULL;

CREATE TRIGGER items_text_insert AFTER INSERT ON items BEGIN
    INSERT INTO item_text (rowid, text)
    SELECT rowid, text FROM item_search_text WHERE rowid = new.rowid AND text IS NOT NULL;
END;

CREATE TRIGGER items_text_delete BEFORE DELETE ON items BEGIN
    INSERT INTO item_text (item_text, rowid, text)
    SELECT 'delete', rowid, text FROM item_search_text WHERE rowid = old.rowid AND text IS NOT NULL;
END;

-- Purges walk conversations by pk and look at updated_at; lists read
-- conversations_owner_created (project, user_key, created_at, and the rowid pk).
