-- Idempotency-Key records: the same key and body within 24 h returns the first answer.
CREATE TABLE qe_idempotency (
  key_hash        char(64)     NOT NULL PRIMARY KEY,
  actor           varchar(255) NOT NULL,
  request_hash    char(64)     NOT NULL,
  state           varchar(10)  NOT NULL,
  response_status integer,
  response_body   text,
  created_at      bigint       NOT NULL
);
CREATE INDEX qe_idempotency_created ON qe_idempotency (created_at);
