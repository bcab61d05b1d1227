-- Release policies per gateway (README "Gateways: who sees what"): a registered gateway's owners
-- are governed by its own rows, never by the deployment's or another gateway's. '' is the
-- deployment's own amavisd database (every row before this migration). One statement: the column
-- and the new key come together.
ALTER TABLE qe_release_policies
  ADD COLUMN gateway_id varchar(32) NOT NULL DEFAULT '',
  DROP CONSTRAINT qe_release_policies_pkey,
  ADD PRIMARY KEY (gateway_id, domain, content_type);
