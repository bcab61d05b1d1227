import type { Config } from '../config.ts';

/**
 * fetch for relay requests: with a Cloudflare Access service token configured (the relay published
 * through a Tunnel behind Access), its two headers go with every request. The relay's own signature
 * is checked either way; Access only keeps unsigned traffic from reaching the mail host. The
 * releases, the learner and /readyz's check of a registered gateway's relay all go through this.
 */
export function relayFetch(config: Config): typeof fetch {
  const id = config.RELAY_ACCESS_CLIENT_ID;
  const secret = config.RELAY_ACCESS_CLIENT_SECRET;
  if (!id || !secret) return (input, init) => fetch(input, init);
  return (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set('cf-access-client-id', id);
    headers.set('cf-access-client-secret', secret);
    return fetch(input, { ...init, headers });
  };
}
