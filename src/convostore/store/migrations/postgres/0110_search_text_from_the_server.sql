-- Issue 21: an append indexes its items' text itself; the trigger indexes the rest.
--
-- Before, the items_search_insert statement trigger indexed every inserted item: per
-- ~270-byte message, convostore_item_text's jsonpath (~35 us), to_tsvector and the
-- tagging (~90 us), the GIN insert. Now the server's appends and creates send each
-- item's text (store/search_text.py's item_text computes what convostore_item_text does)
-- and the owner's tag with the statement, which inserts the item_search rows in a CTE
-- (store/postgres_search.py): PostgreSQL runs no jsonpath and no md5 for them. The
-- trigger still runs at the end of every statement that inserts items, and indexes the
-- items that the statement did not index: those with no text (none is found again),
-- those whose body the server could not read, and every item inserted otherwise
-- (imports, forks, a server of an earlier version during an upgrade). The tsvector is
-- built by the same functions from the same text, so rows indexed before and after
-- this migration are alike and nothing is re-indexed.
-- The items left are chosen first (a materialized CTE: otherwise the planner evaluates
-- the text's IS NOT NULL, so the jsonpath, on every inserted item before the anti-join).
CREATE OR REPLACE FUNCTION convostore_index_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH todo AS MATERIALIZED (
        SELECT n.conv, n.seq, n.body FROM new_items n
         WHERE NOT EXISTS (SELECT FROM item_search s WHERE s.conv = n.conv AND s.seq = n.seq)
    )
    INSERT INTO item_search (conv, seq, tsv)
    SELECT conv, seq, convostore_tagged_tsv(tag, text)
      FROM (SELECT t.conv, t.seq, convostore_item_text(t.body) AS text,
                   convostore_owner_tag(c.project, c.user_key) AS tag
              FROM todo t JOIN conversations c ON c.pk = t.conv) n
     WHERE text IS NOT NULL
     ORDER BY conv, seq;
    RETURN NULL;
END
$$;
