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
);

CREATE TABLE qe_webhook_events (
  id         varchar(40) NOT NULL PRIMARY KEY,
  type       varchar(40) NOT NULL,
  payload    text        NOT NULL,
  domains    text,
  created_at bigint      NOT NULL
);
CREATE INDEX qe_webhook_events_created ON qe_webhook_events (created_at);

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
  created_at       bigint       NOT NULL
);
CREATE INDEX qe_webhook_deliveries_due ON qe_webhook_deliveries (status, next_attempt_at);
CREATE INDEX qe_webhook_deliveries_hook ON qe_webhook_deliveries (webhook_id, created_at);
CREATE INDEX qe_webhook_deliveries_event ON qe_webhook_deliveries (event_id);

CREATE TABLE qe_resend_events (
  svix_id     varchar(100) NOT NULL PRIMARY KEY,
  type        varchar(40)  NOT NULL,
  email_id    varchar(100),
  recipient   varchar(255),
  bounce_type varchar(40),
  occurred_at bigint,
  received_at bigint       NOT NULL,
  payload     text         NOT NULL
);
CREATE INDEX qe_resend_events_email ON qe_resend_events (email_id);
CREATE INDEX qe_resend_events_received ON qe_resend_events (received_at);
