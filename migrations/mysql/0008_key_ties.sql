-- What an API key starts stays tied to it (issue 13): the key that created a webhook subscription
-- (revoking the key disables it), the key that acted in an audit row (id, and its name as it was),
-- and the page sessions kept on the server (sign-out and revocation end them; the cookie holds only
-- a random id, stored here as its SHA-256).
ALTER TABLE qe_webhooks ADD COLUMN key_id varchar(32) NULL;
CREATE INDEX qe_webhooks_key ON qe_webhooks (key_id);
-- subscriptions made before this migration: their creator is 'key:<id>' (the bootstrap admin's are not tied)
UPDATE qe_webhooks SET key_id = substr(created_by, 5) WHERE created_by LIKE 'key:%' AND key_id IS NULL;
ALTER TABLE qe_audit ADD COLUMN key_id varchar(32) NULL;
ALTER TABLE qe_audit ADD COLUMN key_name varchar(200) NULL;
CREATE TABLE qe_ui_sessions (
  id_hash     char(64)     NOT NULL PRIMARY KEY,
  kind        varchar(10)  NOT NULL,
  key_id      varchar(32),
  mailbox     varchar(255),
  bootstrap   varchar(64),
  created_at  bigint       NOT NULL,
  expires_at  bigint       NOT NULL,
  KEY qe_ui_sessions_expires (expires_at),
  KEY qe_ui_sessions_key (key_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
