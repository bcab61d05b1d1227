-- A state database apart from amavisd's (STATE_DATABASE_URL; README "State in its own database"):
-- a change to amavisd's tables cannot share a transaction with its audit row and event there, so
-- it is written in three steps (src/quarantine/cross-writes.ts): this row first (the intent, with
-- everything the settlement needs), then amavisd's change, then the audit row and the event in one
-- transaction that deletes this row. A row still here after a crash is settled by the minute job:
-- it redoes amavisd's change (idempotent) and settles once (the row's deletion is the token).
-- plan: a release attempt's copies and the rs each had before it was claimed (JSON).
-- IF NOT EXISTS throughout: the file can be run again after a failure.
CREATE TABLE IF NOT EXISTS qe_cross_writes (
  id            varchar(40)  NOT NULL PRIMARY KEY,
  kind          varchar(20)  NOT NULL,
  audit_id      bigint       NULL,
  partition_tag integer      NOT NULL,
  mail_id       varchar(16)  NOT NULL,
  payload       text         NOT NULL,
  created_at    bigint       NOT NULL
);
CREATE INDEX IF NOT EXISTS qe_cross_writes_created ON qe_cross_writes (created_at);
ALTER TABLE qe_release_attempts ADD COLUMN IF NOT EXISTS plan text NULL;
