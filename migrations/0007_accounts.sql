-- 0007_accounts.sql: accounts and sessions (issue 11).
--
-- Users can be disabled by an admin (they cannot log in; their sessions
-- end). Sessions may end early when unused (idle_expires_at, pushed forward
-- as the session is used; NULL: no idle timeout). Uploads remember who
-- made them, for the per-user daily quota. site_settings holds the few
-- settings admins change at run time (registration open or closed).
ALTER TABLE users ADD COLUMN disabled_at timestamptz;

ALTER TABLE sessions ADD COLUMN idle_expires_at timestamptz;

ALTER TABLE uploads ADD COLUMN user_id bigint REFERENCES users (id) ON DELETE SET NULL;
-- A user's uploads of the last day (quota).
CREATE INDEX uploads_user_created_idx ON uploads (user_id, created_at) WHERE user_id IS NOT NULL;

CREATE TABLE site_settings (
  name       text PRIMARY KEY,
  value      text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
