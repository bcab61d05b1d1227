-- Where an API key's holder is told of new release requests (issue 18): an admin key hears of
-- every request, a domain admin key of its domains' requests, each with signed approve / deny
-- links that work only while the key is live. NULL: not told.
ALTER TABLE qe_api_keys ADD COLUMN IF NOT EXISTS notify_email varchar(320) NULL;
