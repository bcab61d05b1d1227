-- Every webhook delivery attempt, not only the last: when it was made, the receiver's status code
-- or the error (no answer, refused, timed out), and how long it took. Written in the transaction
-- that records the attempt's outcome on qe_webhook_deliveries; pruned with the deliveries (30 days).
-- IF NOT EXISTS and the keys inside the CREATE: the file can be run again after a failure.
CREATE TABLE IF NOT EXISTS qe_webhook_attempts (
  seq          bigint       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  delivery_id  varchar(40)  NOT NULL,
  attempted_at bigint       NOT NULL,
  status_code  integer,
  error        varchar(500),
  duration_ms  integer      NOT NULL,
  KEY qe_webhook_attempts_delivery (delivery_id, seq),
  KEY qe_webhook_attempts_time (attempted_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
