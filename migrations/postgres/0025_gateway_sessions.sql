-- Page sessions act in one gateway (README "Gateways: who sees what"): the gateway a session's
-- pages read and act in. '' the deployment's own amavisd database (every session made before);
-- any other a registered gateway's id: a portal session from that gateway's digest link, or a key
-- session of a key bound to that one gateway.
ALTER TABLE qe_ui_sessions ADD COLUMN gateway_id varchar(32) NOT NULL DEFAULT '';
