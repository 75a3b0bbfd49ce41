-- Index item text for search in batches instead of inside every append.
--
-- Indexing an item in the append transaction (0003) cost about 37 us per item: the text
-- is extracted with json_tree and FTS5 flushes a new segment at every commit. Appends
-- now only note the new rowid in item_text_pending (one small insert); the text is
-- indexed later, many items per transaction, by the store's background indexer and by
-- every search before it reads (so a search always sees every committed item).
--
-- A rowid can come back after its item is deleted (SQLite reuses the highest rowid),
-- so pending work is keyed by rowid and removed with the row: a deleted item that was
-- never indexed is simply dropped from the queue, one that was is deleted from the index.
CREATE TABLE item_text_pending (rowid INTEGER PRIMARY KEY);

DROP TRIGGER items_text_insert;

CREATE TRIGGER items_text_insert AFTER INSERT ON items BEGIN
    INSERT INTO item_text_pending (rowid) VALUES (new.rowid);
END;

DROP TRIGGER items_text_delete;

CREATE TRIGGER items_text_delete BEFORE DELETE ON items BEGIN
    INSERT INTO item_text (item_text, rowid, text)
    SELECT 'delete', rowid, text FROM item_search_text
     WHERE rowid = old.rowid AND text IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM item_text_pending p WHERE p.rowid = old.rowid);
    DELETE FROM item_text_pending WHERE rowid = old.rowid;
END;
