-- The Idempotency-Key each digest was last sent under. A digest whose answer never came back (a
-- crash, a lost connection) stays 'sending' with its key, and is sent again only under that key, so
-- the mail service either answers from its idempotency store or says the key was used: never a
-- second delivery.
ALTER TABLE qe_digest_sends ADD COLUMN batch_key varchar(80);
CREATE INDEX qe_digest_sends_batch ON qe_digest_sends (batch_key);
