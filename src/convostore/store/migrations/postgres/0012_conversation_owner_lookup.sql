-- Every request finds its conversation by id and owner: `id = $1 AND project = $2 AND
-- user_key = $3`. With only the unique index on id and the list index
-- conversations_owner_created_pk (project, user_key, created_at, pk), PostgreSQL without
-- fresh statistics (a table that just grew, before autovacuum analyzes it) chose the
-- list index and filtered the owner's conversations one by one for the id: O(the
-- owner's conversations) per append or page, 120 ms at about 20,000 conversations in
-- the benchmark. An index on exactly those three columns is the planner's choice with or
-- without statistics.
CREATE UNIQUE INDEX conversations_id_owner ON conversations (id, project, user_key);
