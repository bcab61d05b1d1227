-- The gateway registry (README "Gateways (registry)"): the mail gateways this service is to serve,
-- each with its own amavisd database and release path. Registered gateways are reported by /readyz
-- only: requests are not scoped or routed by gateway yet.
-- database_url_sealed, relay_secret_sealed: AES-GCM under GATEWAY_SECRETS_KEY, prefixed with the
-- key's id (src/gateways/secrets.ts), so a rotated key can still open what the old one sealed.
-- release_kind 'none': a gateway whose mail is only listed, never released from here.
-- A domain is served by one gateway at most: qe_gateway_domains' primary key holds that.
-- IF NOT EXISTS throughout: the file can be run again after a failure.
CREATE TABLE IF NOT EXISTS qe_gateways (
  id                  varchar(32)   NOT NULL PRIMARY KEY,
  name                varchar(200)  NOT NULL,
  database_kind       varchar(16)   NOT NULL,
  hyperdrive_binding  varchar(64)   NULL,
  database_url_sealed text          NULL,
  release_kind        varchar(16)   NOT NULL,
  pdp_address         varchar(300)  NULL,
  relay_url           varchar(2048) NULL,
  relay_secret_sealed text          NULL,
  mail_from           varchar(320)  NULL,
  created_at          bigint        NOT NULL,
  created_by          varchar(512)  NOT NULL,
  updated_at          bigint        NOT NULL
);
CREATE TABLE IF NOT EXISTS qe_gateway_domains (
  domain     varchar(253) NOT NULL PRIMARY KEY,
  gateway_id varchar(32)  NOT NULL
);
CREATE INDEX IF NOT EXISTS qe_gateway_domains_gateway ON qe_gateway_domains (gateway_id);
