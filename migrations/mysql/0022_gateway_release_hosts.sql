-- Several amavisd hosts behind one registered gateway (README "Several amavisd hosts on one
-- database"): a JSON object from msgs.host to that host's release path ("host:port" for AM.PDP, or
-- a relay URL signed with the gateway's relay secret). NULL: every release through `release`.
ALTER TABLE qe_gateways ADD COLUMN release_hosts text NULL;
