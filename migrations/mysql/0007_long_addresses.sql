-- Every address amavisd stores (maddr.email: up to 255 characters, any printable ASCII, e.g. a
-- quoted local part or a '|') must fit wherever quarantine-edge writes it. Actors are a prefix
-- plus such an address (`link:`, `portal:`, `portal-mail:`), so they get 512 characters; the
-- audit's recipient lists and detail grow from text (64 KB on MySQL) to mediumtext, so a release
-- to many long addresses is always auditable. src/audit/audit.ts keeps every value within these sizes.
ALTER TABLE qe_audit MODIFY actor varchar(512) NOT NULL, MODIFY recipients mediumtext, MODIFY domains mediumtext, MODIFY detail mediumtext;
ALTER TABLE qe_idempotency MODIFY actor varchar(512) NOT NULL;
ALTER TABLE qe_digest_subscriptions MODIFY updated_by varchar(512) NOT NULL;
ALTER TABLE qe_api_keys MODIFY created_by varchar(512) NOT NULL;
ALTER TABLE qe_webhooks MODIFY created_by varchar(512) NOT NULL;
