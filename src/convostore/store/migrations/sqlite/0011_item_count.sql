-- How many items each conversation holds, for the console's conversation list (issue 8).
--
-- next_seq counts positions ever reserved, deleted items included; item_count is the
-- live number. The store keeps it in the statements that already write the conversation
-- row: the UPDATE that reserves positions on append adds the batch's size, the UPDATE
-- that touches updated_at on an item delete subtracts one, and creation and import set
-- it. No trigger: a per-item trigger would update the conversation row once per item.
ALTER TABLE conversations ADD COLUMN item_count INTEGER NOT NULL DEFAULT 0;

UPDATE conversations SET item_count = (SELECT count(*) FROM items WHERE items.conv = conversations.pk);
