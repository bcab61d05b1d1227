-- Release attempts whose outcome is not settled yet. A release writes its audit row (result
-- 'pending') and a row here in the transaction that claims its recipients (msgrcpt.rs = 'p'),
-- before anything is sent to amavisd. A known outcome removes the row; an unknown one (amavisd's
-- reply cut or timed out, the database refusing the settlement, a process killed mid-release)
-- leaves it, so that the attempt can be shown to admins and announced once
-- (quarantine.release_unknown, notified_at) until an admin resolves the copies.
CREATE TABLE IF NOT EXISTS qe_release_attempts (
  audit_id      bigint       NOT NULL PRIMARY KEY,
  partition_tag integer      NOT NULL,
  mail_id       varchar(16)  NOT NULL,
  recipients    text         NOT NULL,
  domains       text         NOT NULL,
  started_at    bigint       NOT NULL,
  state         varchar(10)  NOT NULL,
  notified_at   bigint       NULL
);
CREATE INDEX IF NOT EXISTS qe_release_attempts_mail ON qe_release_attempts (mail_id);
CREATE INDEX IF NOT EXISTS qe_release_attempts_started ON qe_release_attempts (started_at);
