-- Issue 7: list conversations, metadata filters, full-text search over item text.
--
-- Lists read conversations in (created_at, pk) order per owner: one index range scan.
DROP INDEX IF EXISTS conversations_owner_created;

CREATE INDEX conversations_owner_created_pk ON conversations (project, user_key, created_at, pk);

-- conversation_metadata holds one row per metadata pair, with the owner and created_at
-- copied in, so a filtered list is one range scan of conversation_metadata_lookup in list
-- order. A trigger keeps it in step with conversations.metadata in the same transaction;
-- deleting a conversation deletes its rows (ON DELETE CASCADE). text cannot hold U+0000:
-- it is kept as U+FFFD, and filters are mapped the same way.
CREATE TABLE conversation_metadata (
    conv bigint NOT NULL REFERENCES conversations (pk) ON DELETE CASCADE,
    key text COLLATE "C" NOT NULL,
    value text COLLATE "C" NOT NULL,
    project text COLLATE "C" NOT NULL,
    user_key text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (conv, key)
);

CREATE INDEX conversation_metadata_lookup
    ON conversation_metadata (project, user_key, key, value, created_at, conv);

CREATE FUNCTION convostore_metadata_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.metadata = OLD.metadata THEN
            RETURN NULL;
        END IF;
        DELETE FROM conversation_metadata WHERE conv = NEW.pk;
    END IF;
    IF NEW.metadata <> '\x7b7d'::bytea THEN
        INSERT INTO conversation_metadata (conv, key, value, project, user_key, created_at)
        SELECT NEW.pk, j.key, j.value, NEW.project, NEW.user_key, NEW.created_at
          FROM jsonb_each_text(replace(convert_from(NEW.metadata, 'UTF8'), '\u0000', '\ufffd')::jsonb) j;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER conversations_metadata_insert AFTER INSERT ON conversations
    FOR EACH ROW EXECUTE FUNCTION convostore_metadata_sync();

CREATE TRIGGER conversations_metadata_update AFTER UPDATE OF metadata ON conversations
    FOR EACH ROW EXECUTE FUNCTION convostore_metadata_sync();

INSERT INTO conversation_metadata (conv, key, value, project, user_key, created_at)
SELECT c.pk, j.key, j.value, c.project, c.user_key, c.created_at
  FROM conversations c, jsonb_each_text(replace(convert_from(c.metadata, 'UTF8'), '\u0000', '\ufffd')::jsonb) j
 WHERE c.metadata <> '\x7b7d'::bytea;

-- The searchable text of an item (docs/search.md): the `text` of every part typed
-- input_text, output_text, text, summary_text or reasoning_text, the `refusal` of refusal
-- parts, a function_call's `arguments` and a function_call_output's `output` when it is a
-- string; at most 100,000 characters (a tsvector holds at most 1 MB). jsonb cannot hold
-- \u0000, so that escape becomes \u0020, a space (the replacement is valid JSON wherever
-- the six characters occur).
-- PL/pgSQL rather than SQL: a session keeps the plan of its query, where a SQL function
-- that cannot be inlined is planned again in every statement that calls it (measured:
-- 330 µs against 100 µs a call).
CREATE FUNCTION convostore_item_text(body bytea) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    j jsonb := replace(convert_from(body, 'UTF8'), '\u0000', '\u0020')::jsonb;
    found text;
BEGIN
    SELECT left(string_agg(v, ' '), 100000) INTO found FROM (
        SELECT jsonb_path_query(j,
            'strict $.** ? (@.type == "input_text" || @.type == "output_text" || @.type == "text" || @.type == "summary_text" || @.type == "reasoning_text").text ? (@.type() == "string")'
        ) #>> '{}' AS v
        UNION ALL
        SELECT jsonb_path_query(j,
            'strict $.** ? (@.type == "refusal").refusal ? (@.type() == "string")'
        ) #>> '{}'
        UNION ALL
        SELECT j ->> 'arguments'
         WHERE j ->> 'type' = 'function_call' AND jsonb_typeof(j -> 'arguments') = 'string'
        UNION ALL
        SELECT j ->> 'output'
         WHERE j ->> 'type' = 'function_call_output' AND jsonb_typeof(j -> 'output') = 'string'
    ) parts;
    RETURN found;
END
$$;

-- item_search: the tsvector of each item with text, numbered in append order (pk), so
-- newest-first is pk order. Deleting an item (or its conversation) deletes its row.
CREATE TABLE item_search (
    pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conv bigint NOT NULL,
    seq bigint NOT NULL,
    tsv tsvector NOT NULL,
    FOREIGN KEY (conv, seq) REFERENCES items (conv, seq) ON DELETE CASCADE
);

CREATE UNIQUE INDEX item_search_item ON item_search (conv, seq);

CREATE INDEX item_search_tsv ON item_search USING gin (tsv);

CREATE FUNCTION convostore_index_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO item_search (conv, seq, tsv)
    SELECT conv, seq, to_tsvector('simple', text)
      FROM (SELECT conv, seq, convostore_item_text(body) AS text FROM new_items) n
     WHERE text IS NOT NULL
     ORDER BY conv, seq;
    RETURN NULL;
END
$$;

CREATE TRIGGER items_search_insert AFTER INSERT ON items
    REFERENCING NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION convostore_index_items();

INSERT INTO item_search (conv, seq, tsv)
SELECT conv, seq, to_tsvector('simple', text)
  FROM (SELECT conv, seq, convostore_item_text(body) AS text FROM items) n
 WHERE text IS NOT NULL
 ORDER BY conv, seq;
