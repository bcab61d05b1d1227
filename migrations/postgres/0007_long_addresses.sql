-- Every address amavisd stores (maddr.email: up to 255 characters, any printable ASCII, e.g. a
-- quoted local part or a '|') must fit wherever quarantine-edge writes it. Actors are a prefix
-- plus such an address (`link:`, `portal:`, `portal-mail:`), so they get 512 characters
-- (PostgreSQL's text columns have no limit to raise). src/audit/audit.ts keeps every value within these sizes.
ALTER TABLE qe_audit ALTER COLUMN actor TYPE varchar(512);
ALTER TABLE qe_idempotency ALTER COLUMN actor TYPE varchar(512);
ALTER TABLE qe_digest_subscriptions ALTER COLUMN updated_by TYPE varchar(512);
ALTER TABLE qe_api_keys ALTER COLUMN created_by TYPE varchar(512);
ALTER TABLE qe_webhooks ALTER COLUMN created_by TYPE varchar(512);
