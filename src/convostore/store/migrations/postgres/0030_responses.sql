-- Stored responses (issue 17): GET/DELETE /v1/responses/{id}, input items and
-- previous_response_id chains.
--
-- responses: one row per stored response, owned like a conversation (project,
-- user_key). body is the Response object as returned, without its output (the output
-- items are rows of response_items). previous_id links a response to the one it
-- continues; root_id names the first response of its chain, and the root's updated_at
-- is the last activity of the whole tree (retention deletes trees, never a part of a
-- chain that a newer response still reads). A deleted response stays as a tombstone
-- (deleted = true, no items) so the chains through it go on.
--
-- response_items: a response's input items (output = false) then its output items, in
-- order (seq). An item that a conversation holds is not stored twice: body is NULL and
-- conv names the conversation, whose item (conv, id) is read instead. When that item
-- (or its conversation) is deleted, the trigger below copies its body here first, so a
-- response keeps its items whatever happens to the conversation, and deleting a response
-- never touches a conversation's items.
CREATE TABLE responses (
    pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text COLLATE "C" NOT NULL,
    project text COLLATE "C" NOT NULL,
    user_key text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    previous_id text COLLATE "C",
    root_id text COLLATE "C" NOT NULL,
    status text NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    body bytea NOT NULL,
    CONSTRAINT responses_id UNIQUE (id)
);

CREATE UNIQUE INDEX responses_id_owner ON responses (id, project, user_key);

CREATE INDEX responses_root ON responses (root_id);

CREATE INDEX responses_retention ON responses (project, updated_at) WHERE id = root_id;

CREATE TABLE response_items (
    resp bigint NOT NULL REFERENCES responses (pk) ON DELETE CASCADE,
    seq integer NOT NULL,
    output boolean NOT NULL,
    id text COLLATE "C" NOT NULL,
    type text COLLATE "C" NOT NULL,
    mask bigint NOT NULL,
    body bytea,
    conv bigint,
    CONSTRAINT response_items_pkey PRIMARY KEY (resp, seq)
);

CREATE UNIQUE INDEX response_items_id ON response_items (resp, output, id);

CREATE INDEX response_items_conv ON response_items (conv, id) WHERE conv IS NOT NULL;

CREATE FUNCTION convostore_keep_for_responses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE response_items r SET body = o.body, conv = NULL
      FROM old_items o
     WHERE r.conv = o.conv AND r.id = o.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER items_keep_for_responses AFTER DELETE ON items
    REFERENCING OLD TABLE AS old_items
    FOR EACH STATEMENT EXECUTE FUNCTION convostore_keep_for_responses();
