-- Release requests (issue 18): a mailbox owner asks for a copy whose type their release policy
-- says `request`; an admin or the domain's domain admin approves (the normal release) or denies
-- it. One per message and recipient: asking again answers the existing one.
-- IF NOT EXISTS throughout: the file can be run again after a failure.
CREATE TABLE IF NOT EXISTS qe_release_requests (
  id            varchar(40)   PRIMARY KEY,
  partition_tag integer       NOT NULL,
  mail_id       varchar(255)  NOT NULL,
  recipient     varchar(255)  NOT NULL,
  domain        varchar(255)  NOT NULL,
  requested_by  varchar(512)  NOT NULL,
  note          varchar(1000),
  status        varchar(10)   NOT NULL,
  created_at    bigint        NOT NULL,
  decided_at    bigint,
  decided_by    varchar(512),
  reason        varchar(1000)
);
CREATE UNIQUE INDEX IF NOT EXISTS qe_release_requests_copy ON qe_release_requests (partition_tag, mail_id, recipient);
CREATE INDEX IF NOT EXISTS qe_release_requests_status ON qe_release_requests (status, created_at);
