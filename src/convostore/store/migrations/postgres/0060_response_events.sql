-- Streamed background responses (issue 17): the events of a response made with
-- background and stream true, numbered by sequence_number (seq), so that
-- GET /v1/responses/{id}?stream=true&starting_after=N replays them from any server process
-- and follows the ones still coming. The process running the response appends them in
-- batches, only while the response runs; exactly one terminal event (response.completed,
-- .incomplete or .failed, terminal = true) ends them, appended by whoever sees the
-- response finished first (its runner, a cancel, or a reader finding its process dead).
-- They go with the response: by cascade when it is purged, by the trigger when it is
-- deleted (it stays as a tombstone row).
CREATE TABLE response_events (
    resp bigint NOT NULL REFERENCES responses (pk) ON DELETE CASCADE,
    seq integer NOT NULL,
    terminal boolean NOT NULL DEFAULT false,
    body bytea NOT NULL,
    CONSTRAINT response_events_pkey PRIMARY KEY (resp, seq)
);

CREATE FUNCTION response_events_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM response_events WHERE resp = NEW.pk;
    RETURN NULL;
END;
$$;

CREATE TRIGGER response_events_deleted AFTER UPDATE OF deleted ON responses
FOR EACH ROW WHEN (NEW.deleted AND NOT OLD.deleted) EXECUTE FUNCTION response_events_deleted();
