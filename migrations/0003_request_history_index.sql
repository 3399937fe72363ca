-- 0003_request_history_index.sql: the admin's request history lists the
-- newest requests first (filtered or not, 100 at a time); without an index
-- on created_at that is a scan and sort of the whole table on every view.
CREATE INDEX requests_created_idx ON requests (created_at);
