-- Issue 15 (H1, M1): search indexing linear and bounded per item, in short transactions;
-- every owner's words apart from every other owner's.
--
-- Before: the item_search_text view called json_extract on the whole document once per
-- part (O(parts^2)), inside the indexer's write transaction (minutes for one message of
-- 200,000 parts, every other writer waiting), and again in the delete trigger.
-- Now: the background indexer (store/sqlite_maintenance.py) reads a queued item and
-- extracts its text outside any write transaction (one json_tree pass, at most 100,000
-- characters, store/search_text.py), then writes the words in a short transaction.
--
-- item_words holds what was indexed for an item: its words, each prefixed with its
-- owner's tag (a hash of project and isolation key), so the terms of one owner sort
-- together in the FTS index and a search (which asks only for its own tag's terms)
-- never reads another owner's. item_text is an FTS5 index over item_words (external
-- content): deleting an item deletes its words by rowid, without extracting anything.
-- The 'ascii' tokenizer splits at the spaces the indexer wrote and keeps each word
-- exactly (the words are folded to lower case by the indexer and by the query).
--
-- item_text_pending: the queue, one row per stored item not yet indexed, with its
-- owner (a search waits only for its own owner's items). ticket is never reused
-- (AUTOINCREMENT), so an item deleted and replaced under the same rowid while the
-- indexer was extracting it is recognised: its ticket is gone.
DROP TRIGGER items_text_insert;

DROP TRIGGER items_text_delete;

DROP VIEW item_search_text;

DROP TABLE item_text;

DROP TABLE item_text_pending;

CREATE TABLE item_words (rowid INTEGER PRIMARY KEY, words TEXT NOT NULL);

CREATE VIRTUAL TABLE item_text USING fts5 (
    words, content = 'item_words', content_rowid = 'rowid', tokenize = 'ascii'
);

CREATE TABLE item_text_pending (
    ticket INTEGER PRIMARY KEY AUTOINCREMENT,
    item INTEGER NOT NULL,
    project TEXT NOT NULL,
    user_key TEXT NOT NULL
);

CREATE INDEX item_text_pending_item ON item_text_pending (item);

CREATE INDEX item_text_pending_owner ON item_text_pending (project, user_key, ticket);

CREATE TRIGGER items_text_insert AFTER INSERT ON items BEGIN
    INSERT INTO item_text_pending (item, project, user_key)
    SELECT new.rowid, project, user_key FROM conversations WHERE pk = new.conv;
END;

CREATE TRIGGER items_text_delete BEFORE DELETE ON items BEGIN
    INSERT INTO item_text (item_text, rowid, words)
    SELECT 'delete', rowid, words FROM item_words WHERE rowid = old.rowid;
    DELETE FROM item_words WHERE rowid = old.rowid;
    DELETE FROM item_text_pending WHERE item = old.rowid;
END;

-- Every stored item is indexed again, in the background, the new way.
INSERT INTO item_text_pending (item, project, user_key)
SELECT i.rowid, c.project, c.user_key FROM items i JOIN conversations c ON c.pk = i.conv
 ORDER BY i.rowid;
