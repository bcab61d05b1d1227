-- quarantine-edge's own tables. amavisd's tables are never altered.
CREATE TABLE qe_schema_migrations (
  version    integer      NOT NULL PRIMARY KEY,
  name       varchar(100) NOT NULL,
  applied_at bigint       NOT NULL
);

CREATE TABLE qe_api_keys (
  id           varchar(32)  NOT NULL PRIMARY KEY,
  name         varchar(200) NOT NULL,
  role         varchar(20)  NOT NULL,
  domains      text,
  mailbox      varchar(255),
  key_hash     char(64)     NOT NULL UNIQUE,
  key_prefix   varchar(16)  NOT NULL,
  created_at   bigint       NOT NULL,
  created_by   varchar(255) NOT NULL,
  expires_at   bigint,
  revoked_at   bigint,
  last_used_at bigint
);

CREATE TABLE qe_audit (
  id            bigserial    PRIMARY KEY,
  at            bigint       NOT NULL,
  actor         varchar(255) NOT NULL,
  actor_role    varchar(20)  NOT NULL,
  action        varchar(40)  NOT NULL,
  partition_tag integer,
  mail_id       varchar(16),
  recipients    text,
  domains       text,
  result        varchar(20)  NOT NULL,
  detail        text
);
CREATE INDEX qe_audit_at ON qe_audit (at);
CREATE INDEX qe_audit_mail ON qe_audit (mail_id);
