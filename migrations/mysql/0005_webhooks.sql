-- Webhooks: subscriptions, the outbox (events written in the transaction of the change that
-- caused them) and one delivery per event and subscription; Resend's delivery events received.
CREATE TABLE qe_webhooks (
  id              varchar(32)   NOT NULL PRIMARY KEY,
  url             varchar(2048) NOT NULL,
  events          text          NOT NULL,
  description     varchar(500),
  secret          varchar(100)  NOT NULL,
  domains         text,
  created_by      varchar(255)  NOT NULL,
  created_at      bigint        NOT NULL,
  disabled_at     bigint,
  disabled_reason varchar(255)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE qe_webhook_events (
  id         varchar(40) NOT NULL PRIMARY KEY,
  type       varchar(40) NOT NULL,
  payload    mediumtext  NOT NULL,
  domains    text,
  created_at bigint      NOT NULL,
  KEY qe_webhook_events_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE qe_webhook_deliveries (
  id               varchar(40)  NOT NULL PRIMARY KEY,
  webhook_id       varchar(32)  NOT NULL,
  event_id         varchar(40)  NOT NULL,
  status           varchar(12)  NOT NULL,
  attempts         integer      NOT NULL DEFAULT 0,
  next_attempt_at  bigint       NOT NULL,
  last_attempt_at  bigint,
  last_status      integer,
  last_error       varchar(500),
  last_duration_ms integer,
  delivered_at     bigint,
  created_at       bigint       NOT NULL,
  KEY qe_webhook_deliveries_due (status, next_attempt_at),
  KEY qe_webhook_deliveries_hook (webhook_id, created_at),
  KEY qe_webhook_deliveries_event (event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE qe_resend_events (
  svix_id     varchar(100) NOT NULL PRIMARY KEY,
  type        varchar(40)  NOT NULL,
  email_id    varchar(100),
  recipient   varchar(255),
  bounce_type varchar(40),
  occurred_at bigint,
  received_at bigint       NOT NULL,
  payload     mediumtext   NOT NULL,
  KEY qe_resend_events_email (email_id),
  KEY qe_resend_events_received (received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
