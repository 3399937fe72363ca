-- 0008_request_states.sql: what a request card shows (issue 14).
--
-- A user may cancel a queued or running request: it ends as 'cancelled'
-- (reported as "failed" with reason "cancelled" to polling scripts, which
-- know only queued|processing|completed|failed).
ALTER TABLE requests DROP CONSTRAINT requests_status_check;
ALTER TABLE requests ADD CONSTRAINT requests_status_check
  CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled'));

-- A short sentence about the last transition the user did not cause (its
-- app disconnected and it went back to the queue, it timed out), shown on
-- the request's card live and after a reload.
ALTER TABLE requests ADD COLUMN notice text;
-- When the app first reported progress on its current delivery (NULL: not
-- yet): from then on the request is being worked on.
ALTER TABLE requests ADD COLUMN progress_at timestamptz;

-- The requests apps hold in a space, in the order they were sent (the
-- "ahead" of each request at its app).
CREATE INDEX requests_processing_idx ON requests (space_id, started_at)
  WHERE status = 'processing';
-- The last completions of a space (the estimated wait).
CREATE INDEX requests_completed_idx ON requests (space_id, finished_at)
  WHERE status = 'completed';
