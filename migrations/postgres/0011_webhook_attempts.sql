-- Every webhook delivery attempt, not only the last: when it was made, the receiver's status code
-- or the error (no answer, refused, timed out), and how long it took. Written in the transaction
-- that records the attempt's outcome on qe_webhook_deliveries; pruned with the deliveries (30 days).
-- IF NOT EXISTS throughout: the file can be run again after a failure.
CREATE TABLE IF NOT EXISTS qe_webhook_attempts (
  seq          bigserial    PRIMARY KEY,
  delivery_id  varchar(40)  NOT NULL,
  attempted_at bigint       NOT NULL,
  status_code  integer,
  error        varchar(500),
  duration_ms  integer      NOT NULL
);
CREATE INDEX IF NOT EXISTS qe_webhook_attempts_delivery ON qe_webhook_attempts (delivery_id, seq);
CREATE INDEX IF NOT EXISTS qe_webhook_attempts_time ON qe_webhook_attempts (attempted_at);
