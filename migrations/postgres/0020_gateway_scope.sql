-- Requests scoped by gateway (README "Gateways: who sees what"). '' is the deployment's own
-- amavisd database (DATABASE_URL); any other value is a registered gateway's id (qe_gateways.id).
-- qe_api_keys.gateways: a JSON list. On an admin key: the gateways a gateway admin administers
-- (NULL: the whole deployment). On a domain admin or user key: the one gateway it belongs to
-- (NULL: the deployment's own database, as every key before this migration).
-- gateway_id on the audit, release attempts and cross-database intents: where the message lives,
-- so each gateway's admins read only their own rows and the recovery pass reaches the right database.
ALTER TABLE qe_api_keys ADD COLUMN gateways text NULL;
ALTER TABLE qe_audit ADD COLUMN gateway_id varchar(32) NOT NULL DEFAULT '';
ALTER TABLE qe_release_attempts ADD COLUMN gateway_id varchar(32) NOT NULL DEFAULT '';
ALTER TABLE qe_cross_writes ADD COLUMN gateway_id varchar(32) NOT NULL DEFAULT '';
CREATE INDEX qe_audit_gateway ON qe_audit (gateway_id, id);
