-- Digests per gateway (README "Gateways: who sees what"): a mailbox owner's subscription, watermark
-- and send records belong to the gateway whose amavisd database holds their mail. '' is the
-- deployment's own (DATABASE_URL): every row before this migration. The same address may have a
-- digest from two gateways (each of its own mail), so the gateway is part of each key.
-- One ALTER per table (atomic in MariaDB): a run stopped between them is run again from the start,
-- and a table already altered answers "duplicate column", which counts as done.
ALTER TABLE qe_digest_subscriptions ADD COLUMN gateway_id varchar(32) NOT NULL DEFAULT '', DROP PRIMARY KEY, ADD PRIMARY KEY (gateway_id, address);
ALTER TABLE qe_digest_state ADD COLUMN gateway_id varchar(32) NOT NULL DEFAULT '', DROP PRIMARY KEY, ADD PRIMARY KEY (gateway_id, recipient);
ALTER TABLE qe_digest_sends ADD COLUMN gateway_id varchar(32) NOT NULL DEFAULT '';
