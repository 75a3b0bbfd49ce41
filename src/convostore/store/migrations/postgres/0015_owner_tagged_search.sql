-- Issue 15 (M1): a search reads only its owner's part of the index.
--
-- Before: every item's lexemes went into one GIN index; a search of one project read
-- the posting lists of its words across all projects and filtered afterwards (and its
-- time told how frequent a word was elsewhere). Now every lexeme is prefixed with its
-- owner's tag, 't' and the first 10 hex digits of md5(project, U+001F, isolation key)
-- (store/search_text.py computes the same), so the terms of one owner sort together in
-- the GIN entry tree, and a query, whose terms carry the caller's tag, reads only the
-- caller's entries. The words are still cut by to_tsvector('simple', …), as before.
CREATE FUNCTION convostore_owner_tag(project text, user_key text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN 't' || left(md5(project || chr(31) || user_key), 10);

-- The tsvector of a text with every lexeme prefixed by tag (positions kept, so phrase
-- queries work as before).
CREATE FUNCTION convostore_tagged_tsv(tag text, text text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (
    SELECT coalesce(string_agg(
        '''' || replace(replace(tag || t.lexeme, '\', '\\'), '''', '''''') || ''':'
            || array_to_string(t.positions, ','),
        ' '), '')::tsvector
      FROM unnest(to_tsvector('simple', text)) t
);

CREATE OR REPLACE FUNCTION convostore_index_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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

UPDATE item_search s
   SET tsv = convostore_tagged_tsv(convostore_owner_tag(c.project, c.user_key),
                                   convostore_item_text(i.body))
  FROM items i, conversations c
 WHERE i.conv = s.conv AND i.seq = s.seq AND c.pk = s.conv;
