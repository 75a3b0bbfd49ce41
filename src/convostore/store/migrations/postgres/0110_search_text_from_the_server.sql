-- Issue 21: an append indexes its items itself; the trigger indexes the rest.
--
-- Before, the items_search_insert statement trigger indexed every inserted item: per
-- ~270-byte message, convostore_item_text's jsonpath (~35 us), then to_tsvector, the
-- tagging and the GIN insert. Now the server's appends and creates read each item's
-- text from its body (store/search_text.py's item_text: what convostore_item_text
-- computes, tests/store/test_search_text_pg.py) and send the texts and the owner's tag
-- with the statement, whose CTE inserts the item_search rows, tagged by
-- convostore_tagged_tsv as before (store/postgres_search.py): PostgreSQL runs no
-- jsonpath and no md5 for them. Such a statement also sets convostore.items_indexed for
-- its transaction; the trigger, which still runs at the end of every statement that
-- inserts items, then only clears it. Otherwise it indexes the statement's items as
-- before: items inserted another way (imports, forks, a server of an earlier version
-- during an upgrade), or by an append with a body the server could not read (it then
-- sends no text at all). An item the server found no text in has none in SQL either,
-- and the tsvectors are built by the same functions from the same text, so rows indexed
-- before this migration are kept and nothing is re-indexed.
-- (A first version looked each new item up in item_search instead of the flag: the
-- trigger's plan, kept by the session, went on scanning the whole table after it grew.)
CREATE OR REPLACE FUNCTION convostore_index_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('convostore.items_indexed', true) = 'on' THEN
        PERFORM set_config('convostore.items_indexed', '', true);
        RETURN NULL;
    END IF;
    INSERT INTO item_search (conv, seq, tsv)
    SELECT conv, seq, convostore_tagged_tsv(tag, text)
      FROM (SELECT n.conv, n.seq, convostore_item_text(n.body) AS text,
                   convostore_owner_tag(c.project, c.user_key) AS tag
              FROM new_items n JOIN conversations c ON c.pk = n.conv) n
     WHERE text IS NOT NULL
     ORDER BY conv, seq;
    RETURN NULL;
END
$$;
