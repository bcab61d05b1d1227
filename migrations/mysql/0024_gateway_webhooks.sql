-- Webhook subscriptions and release requests scoped by gateway (README "Gateways: who sees what").
-- qe_webhooks.gateway_id: the gateway whose events a subscription receives ('' the deployment's own
-- amavisd database, any other a registered gateway's id); NULL: every gateway (a deployment admin's).
-- Subscriptions made before: a domain admin's (domains set) and a gateway admin's (its key has
-- gateways; only one of the deployment's own could reach the route) were the deployment's own.
-- qe_release_requests.gateway_id: the gateway whose message the request is for; one request per
-- copy within a gateway (two gateways may hold the same partition and mail_id).
ALTER TABLE qe_webhooks ADD COLUMN gateway_id varchar(32) NULL;
UPDATE qe_webhooks SET gateway_id = '' WHERE gateway_id IS NULL AND (domains IS NOT NULL OR key_id IN (SELECT id FROM qe_api_keys WHERE role = 'admin' AND gateways IS NOT NULL));
CREATE INDEX qe_webhooks_gateway ON qe_webhooks (gateway_id);
ALTER TABLE qe_release_requests ADD COLUMN gateway_id varchar(32) NOT NULL DEFAULT '';
-- one statement: the old key goes and the new one comes together (run again, it does the same)
ALTER TABLE qe_release_requests DROP INDEX qe_release_requests_copy, ADD UNIQUE KEY qe_release_requests_copy (gateway_id, partition_tag, mail_id, recipient);
CREATE INDEX qe_release_requests_gateway ON qe_release_requests (gateway_id, status, created_at);
