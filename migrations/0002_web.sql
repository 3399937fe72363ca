-- 0002_web.sql: what the website needs beyond 0001.
--
-- Uploaded files are stored before their request exists (the request id
-- comes from the submission that follows), and they must outlive a deleted
-- request or space long enough for the cleanup to delete their files from
-- disk: so an upload whose request goes away keeps its row, with
-- request_id NULL, and the web layer's cleanup removes row and file.
ALTER TABLE uploads DROP CONSTRAINT uploads_request_id_fkey;
ALTER TABLE uploads ADD CONSTRAINT uploads_request_id_fkey
  FOREIGN KEY (request_id) REFERENCES requests (id) ON DELETE SET NULL;

-- Uploads without a request: abandoned submissions and deleted requests.
CREATE INDEX uploads_orphan_idx ON uploads (created_at) WHERE request_id IS NULL;
