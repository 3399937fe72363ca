-- The server processes of a cluster (spaces-server --node-id NAME). Each
-- writes its row every second; one not seen for --node-timeout seconds is
-- dead: another node deletes its row, marks its apps disconnected and
-- returns the requests they held to the queue.
CREATE TABLE nodes (
  id       text PRIMARY KEY,
  seen_at  timestamptz NOT NULL DEFAULT now(),
  instance text NOT NULL DEFAULT '', -- random per process start: two live processes
                                      -- with one id overwrite each other's
  up_since timestamptz NOT NULL DEFAULT now() -- start of its heartbeats without a gap:
                                      -- it judges others only after a whole timeout
);
