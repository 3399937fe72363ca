-- 0004_drop_redundant_request_index.sql: requests_user_idx (user_id,
-- created_at) serves no query that requests_user_space_idx (user_id,
-- space_id, created_at) does not serve too (deleting a user finds their
-- requests by its leading column), and every insert and every status change
-- paid for keeping it.
DROP INDEX requests_user_idx;
