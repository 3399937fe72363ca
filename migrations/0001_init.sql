-- 0001_init.sql: the Spaces schema (docs: DESIGN.md "Spaces data model", PROTOCOL.md).
--
-- Applied once by db_migrate, inside a transaction, recorded in
-- schema_migrations. Forward only: later changes go in 0002_*.sql and on.
--
-- Conventions: ids that travel on the wire (request, connection ids) are the
-- text the protocol uses, so a malformed id from a client simply matches no
-- row instead of raising a type error. Timestamps are timestamptz (UTC).
-- updated_at is kept by a trigger, so no statement can forget it.

-- Space ids are short random strings rather than a bigserial: they appear in
-- URLs (/ai_project/<id>, /admin/space/edit/<id>), where a counter would let
-- anyone enumerate spaces and count them. 9 random bytes of a v4 UUID (66
-- random bits) in base64url make 12 URL-safe characters; a collision is
-- caught by the primary key.
CREATE FUNCTION spaces_short_id() RETURNS text
LANGUAGE sql VOLATILE AS $$
  SELECT translate(encode(substring(uuid_send(gen_random_uuid()) FROM 1 FOR 9), 'base64'),
                   '+/', '-_')
$$;

CREATE FUNCTION spaces_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

-- ---- users and sessions ------------------------------------------------------

CREATE TABLE users (
  id            bigserial PRIMARY KEY,
  username      text NOT NULL CHECK (username ~ '^[A-Za-z0-9_]{1,64}$'),
  password_hash text NOT NULL,              -- argon2id string (libsodium)
  is_admin      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now()
);
-- "Alice" and "alice" are the same user; the name keeps the case it was given.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

CREATE TABLE sessions (
  token_hash text PRIMARY KEY,              -- hash of the cookie's token; the token is never stored
  user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  csrf_token text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- ---- spaces ------------------------------------------------------------------------

CREATE TABLE spaces (
  id                 text PRIMARY KEY DEFAULT spaces_short_id()
                     CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
  name               text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
  description        text NOT NULL DEFAULT '',
  cover              text NOT NULL DEFAULT '',
  cover_type         text NOT NULL DEFAULT 'image',
  card_type          text NOT NULL DEFAULT 'websockets',
  enable_prompt      boolean NOT NULL DEFAULT true,
  enable_audio       boolean NOT NULL DEFAULT false,
  enable_video       boolean NOT NULL DEFAULT false,
  enable_file_upload boolean NOT NULL DEFAULT false,
  rate_limit_seconds integer NOT NULL DEFAULT 0 CHECK (rate_limit_seconds >= 0),
  timeout_seconds    integer NOT NULL DEFAULT 120 CHECK (timeout_seconds > 0),
  max_apps           integer NOT NULL DEFAULT 1 CHECK (max_apps >= 1),
  app_token_hash     text,                  -- NULL: apps need no token
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER spaces_updated_at BEFORE UPDATE ON spaces
  FOR EACH ROW EXECUTE FUNCTION spaces_touch_updated_at();

-- ---- apps connected to spaces ---------------------------------------------------------

CREATE TABLE app_connections (
  id              text PRIMARY KEY,         -- uuid4 string: the connection_id sent to the app
  space_id        text NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
  sid             text NOT NULL,            -- the Socket.IO socket id
  node_id         text NOT NULL DEFAULT '', -- the server process holding the socket
  address         text,
  connected_at    timestamptz NOT NULL DEFAULT now(),
  disconnected_at timestamptz,              -- NULL while connected
  requests_served integer NOT NULL DEFAULT 0
);
-- Live apps of a space (max_apps, "Connected" on the page, dispatch).
CREATE INDEX app_connections_live_idx ON app_connections (space_id)
  WHERE disconnected_at IS NULL;
-- Live apps of a node (cleaned up when that node restarts).
CREATE INDEX app_connections_node_live_idx ON app_connections (node_id)
  WHERE disconnected_at IS NULL;

-- ---- requests ------------------------------------------------------------------------------

CREATE TABLE requests (
  id               text PRIMARY KEY,        -- uuid4 string: request_id on the wire
  space_id         text NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
  user_id          bigint REFERENCES users (id) ON DELETE SET NULL,
  username         text NOT NULL,           -- as sent to the app, kept if the user goes
  status           text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
  payload          jsonb NOT NULL DEFAULT '{}',
  result           jsonb,
  progress         integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
  progress_message text,
  attempts         integer NOT NULL DEFAULT 0,  -- deliveries to an app
  connection_id    text REFERENCES app_connections (id) ON DELETE SET NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,             -- last delivery to an app
  finished_at      timestamptz,             -- completed or failed
  deadline_at      timestamptz              -- fails with a timeout when still open then
);
CREATE TRIGGER requests_updated_at BEFORE UPDATE ON requests
  FOR EACH ROW EXECUTE FUNCTION spaces_touch_updated_at();

-- The queue of a space, oldest first (redelivery when an app registers).
CREATE INDEX requests_queued_idx ON requests (space_id, created_at)
  WHERE status = 'queued';
-- The requests an app connection holds (requeued when it disconnects).
CREATE INDEX requests_connection_idx ON requests (connection_id)
  WHERE connection_id IS NOT NULL;
-- The timeout sweep: open requests by deadline.
CREATE INDEX requests_deadline_idx ON requests (deadline_at)
  WHERE status IN ('queued', 'processing');
-- A user's requests, newest first.
CREATE INDEX requests_user_idx ON requests (user_id, created_at DESC);
-- A user's last request in a space (rate limit).
CREATE INDEX requests_user_space_idx ON requests (user_id, space_id, created_at DESC);

-- ---- uploads -------------------------------------------------------------------------------

CREATE TABLE uploads (
  id           bigserial PRIMARY KEY,
  request_id   text REFERENCES requests (id) ON DELETE CASCADE,
  token        text NOT NULL UNIQUE,        -- unguessable; the app fetches /uploads/<token>
  filename     text NOT NULL,               -- as the user named it (display only)
  content_type text NOT NULL DEFAULT 'application/octet-stream',
  size         bigint NOT NULL CHECK (size >= 0),
  path         text NOT NULL,               -- where the server stored it
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uploads_request_idx ON uploads (request_id);
