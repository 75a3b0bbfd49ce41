-- Issue 21: the search queue holds one row per append, not one per item.
--
-- Before (0014): an AFTER INSERT trigger on items queued every item in
-- item_text_pending (a row, its two indexes and the AUTOINCREMENT counter), inside the
-- 20-row INSERT of an append: about half of that INSERT's cost, and a statement journal
-- for every row.
-- Now: no insert trigger. Every statement that writes items (store/sqlite_append.py
-- queue_search, called by appends, creates, response turns, imports and forks) queues,
-- in the same transaction, one row naming the positions it wrote: the conversation and
-- its range of seq. A position is never reused while its conversation lives (next_seq
-- only grows), and a conversation's rows leave the queue when it is deleted (trigger
-- below), so a queued (conv, seq) names one item or, once that item is deleted, none.
-- The indexer (store/sqlite_maintenance.py) reads the items of a range by items_conv_seq,
-- and writes their words only where the item still stands at that rowid, conv and seq;
-- a long range is taken a batch at a time (first_seq moves on). ticket is never reused
-- (AUTOINCREMENT): an indexer that read a range recognises that it is gone, or taken
-- further by another indexer, when it comes to write.
--
-- Deleting an item deletes its words (if indexed); a queued range that covers it simply
-- finds it gone.
DROP TRIGGER items_text_insert;

DROP TRIGGER items_text_delete;

ALTER TABLE item_text_pending RENAME TO item_text_pending_0014;

DROP INDEX item_text_pending_item;

DROP INDEX item_text_pending_owner;

CREATE TABLE item_text_pending (
    ticket INTEGER PRIMARY KEY AUTOINCREMENT,
    conv INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    project TEXT NOT NULL,
    user_key TEXT NOT NULL
);

-- The items queued the old way, one range of one position each, in their order.
INSERT INTO item_text_pending (conv, first_seq, last_seq, project, user_key)
SELECT i.conv, i.seq, i.seq, p.project, p.user_key
  FROM item_text_pending_0014 p JOIN items i ON i.rowid = p.item
 ORDER BY p.ticket;

DROP TABLE item_text_pending_0014;

CREATE INDEX item_text_pending_conv ON item_text_pending (conv);

CREATE INDEX item_text_pending_owner ON item_text_pending (project, user_key, ticket);

CREATE TRIGGER items_text_delete BEFORE DELETE ON items BEGIN
    INSERT INTO item_text (item_text, rowid, words)
    SELECT 'delete', rowid, words FROM item_words WHERE rowid = old.rowid;
    DELETE FROM item_words WHERE rowid = old.rowid;
END;

CREATE TRIGGER conversations_text_pending_delete AFTER DELETE ON conversations BEGIN
    DELETE FROM item_text_pending WHERE conv = old.pk;
END;
