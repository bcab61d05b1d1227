// Imported first by the config: wrangler/miniflare read these, and this machine has no internet.
process.env.WRANGLER_SEND_METRICS ??= 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
