-- Quarantine digests (issue 4): who wants one, how far each recipient has been told, and every send.
-- Addresses are stored lowercased, as amavisd stores them.
CREATE TABLE qe_digest_subscriptions (
  address     varchar(255) NOT NULL PRIMARY KEY,
  domain      varchar(253) NOT NULL,
  enabled     smallint     NOT NULL,
  frequency   varchar(10)  NOT NULL,
  time_zone   varchar(64),
  updated_at  bigint       NOT NULL,
  updated_by  varchar(255) NOT NULL
);
CREATE INDEX qe_digest_subscriptions_domain ON qe_digest_subscriptions (domain);

-- The watermark: the newest message (time_num, mail_id) a recipient's accepted digest covered.
CREATE TABLE qe_digest_state (
  recipient      varchar(255) NOT NULL PRIMARY KEY,
  last_time_num  bigint       NOT NULL,
  last_mail_id   varchar(16)  NOT NULL,
  last_sent_at   bigint       NOT NULL,
  updated_at     bigint       NOT NULL
);

-- One row per digest per recipient and window: the idempotency key makes a retried or
-- overlapping run send once; provider_id matches the mail service's delivery events later.
CREATE TABLE qe_digest_sends (
  id               bigserial    NOT NULL PRIMARY KEY,
  idempotency_key  char(64)     NOT NULL,
  recipient        varchar(255) NOT NULL,
  window_from_time bigint,
  window_from_id   varchar(16),
  window_to_time   bigint       NOT NULL,
  window_to_id     varchar(16)  NOT NULL,
  messages         integer      NOT NULL,
  status           varchar(10)  NOT NULL,
  provider         varchar(10)  NOT NULL,
  provider_id      varchar(255),
  error            text,
  attempts         integer      NOT NULL,
  created_at       bigint       NOT NULL,
  updated_at       bigint       NOT NULL
);
CREATE UNIQUE INDEX qe_digest_sends_key ON qe_digest_sends (idempotency_key);
CREATE INDEX qe_digest_sends_recipient ON qe_digest_sends (recipient, created_at);
CREATE INDEX qe_digest_sends_provider ON qe_digest_sends (provider_id);
