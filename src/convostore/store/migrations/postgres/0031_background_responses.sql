-- Background responses (issue 17). A response made with background true is a row from the
-- start (status queued, then in_progress) whose expires_at the server process running it
-- pushes forward while it runs (the database's clock, in seconds since the epoch, like
-- conversation leases). Cancelling from any process sets the status; the runner sees it
-- at its next renewal and stops, and its final write only lands while the status is still
-- running. A process that dies leaves expires_at to pass: every read of the response
-- marks it failed then, so none stays in_progress forever. NULL once finished.
ALTER TABLE responses ADD COLUMN expires_at double precision;
