-- The language of a mailbox owner's digest (issue 16): a catalog name from templates/messages/
-- ("en", "de"); NULL is the default (English). Set by the owner on the Digest settings page.
ALTER TABLE qe_digest_subscriptions ADD COLUMN IF NOT EXISTS language varchar(16) NULL;
