-- 0006_space_access.sql: who may register as a space's app.
--
-- app_access 'token': only an app presenting the space's token (?token= on
-- its URL, or "token" in its Socket.IO auth) may register; 'open': any app
-- that knows the name may, as the old site allowed. New spaces are 'token'
-- (the site generates their token) unless the server runs with
-- --legacy-open-spaces.
--
-- Existing rows keep today's behaviour: a space that already had a token
-- is 'token', one without is 'open' (the admin page flags it, and switches
-- it to 'token' in one click).
--
-- app_token keeps the token itself, readable by admins only, so that the
-- admin pages can show the exact command line that connects an app;
-- app_token_hash (SHA-256, hex) is what a registering app is checked
-- against. Rows from before this migration have only the hash: their
-- command line shows a placeholder until a new token is generated.
ALTER TABLE spaces
  ADD COLUMN app_access text NOT NULL DEFAULT 'token'
    CHECK (app_access IN ('token', 'open')),
  ADD COLUMN app_token text CHECK (length(app_token) BETWEEN 1 AND 256);

UPDATE spaces SET app_access = 'open' WHERE app_token_hash IS NULL;
