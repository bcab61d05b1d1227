-- Quarantine digests (issue 4): who wants one, how far each recipient has been told, and every send.
-- Addresses are stored lowercased, as amavisd stores them.
CREATE TABLE qe_digest_subscriptions (
  address     varchar(255) NOT NULL PRIMARY KEY,
  domain      varchar(253) NOT NULL,
  enabled     smallint     NOT NULL,
  frequency   varchar(10)  NOT NULL,
  time_zone   varchar(64),
  updated_at  bigint       NOT NULL,
  updated_by  varchar(255) NOT NULL,
  KEY qe_digest_subscriptions_domain (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The watermark: the newest message (time_num, mail_id) a recipient's accepted digest covered.
CREATE TABLE qe_digest_state (
  recipient      varchar(255) NOT NULL PRIMARY KEY,
  last_time_num  bigint       NOT NULL,
  last_mail_id   varchar(16)  NOT NULL,
  last_sent_at   bigint       NOT NULL,
  updated_at     bigint       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per digest per recipient and window: the idempotency key makes a retried or
-- overlapping run send once; provider_id matches the mail service's delivery events later.
CREATE TABLE qe_digest_sends (
  id               bigint       NOT NULL AUTO_INCREMENT PRIMARY KEY,
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
  updated_at       bigint       NOT NULL,
  UNIQUE KEY qe_digest_sends_key (idempotency_key),
  KEY qe_digest_sends_recipient (recipient, created_at),
  KEY qe_digest_sends_provider (provider_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
