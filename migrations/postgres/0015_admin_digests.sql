-- An admin's digest (issue 16.5): an admin or domain admin subscribes an address to a digest of
-- everything quarantined in a reach (some of their domains, or all for an admin). key_id is the
-- API key that made it: the digest goes out, and its links act, only while that key is live.
-- domains: a JSON array of domain names; NULL: every domain (an admin's key only). Its watermark
-- and sends are the owners' ledger (qe_digest_state, qe_digest_sends) under "admin-digest:<id>".
-- IF NOT EXISTS throughout: the file can be run again after a failure.
CREATE TABLE IF NOT EXISTS qe_admin_digests (
  id          varchar(40)   PRIMARY KEY,
  address     varchar(255)  NOT NULL,
  key_id      varchar(32)   NOT NULL,
  domains     text,
  frequency   varchar(10)   NOT NULL,
  time_zone   varchar(64),
  language    varchar(16),
  created_at  bigint        NOT NULL,
  created_by  varchar(512)  NOT NULL
);
CREATE INDEX IF NOT EXISTS qe_admin_digests_key ON qe_admin_digests (key_id);
