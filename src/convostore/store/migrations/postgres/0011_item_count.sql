-- How many items each conversation holds, for the console's conversation list (issue 8).
--
-- next_seq counts positions ever reserved, deleted items included; item_count is the
-- live number. The store keeps it in the statements that already write the conversation
-- row: the UPDATE that reserves positions on append (under the row lock) adds the
-- batch's size, the UPDATE that locks the row on an item delete subtracts one, and
-- creation and import set it. No trigger: a per-item trigger would update the
-- conversation row once per item.
ALTER TABLE conversations ADD COLUMN item_count bigint NOT NULL DEFAULT 0;

UPDATE conversations c SET item_count = n.count
  FROM (SELECT conv, count(*) AS count FROM items GROUP BY conv) n
 WHERE n.conv = c.pk;
