import type { Context } from 'hono';

/**
 * The client's IP address, for rate limits only, from what the runtime itself vouches for:
 *
 * - Workers: `cf-connecting-ip`. Cloudflare sets it on every request to the Worker and replaces
 *   any value the client sent, so it cannot be forged from outside.
 * - Node (@hono/node-server): the TCP peer's address, as hono's getConnInfo reads it
 *   (`env.incoming.socket.remoteAddress`; read here directly so the Worker bundle does not pull in
 *   the Node adapter). Behind a reverse proxy that is the proxy's address, so all clients would share
 *   one limit: with `TRUST_PROXY=1` the last `X-Forwarded-For` entry (the one the proxy appended)
 *   is used instead. Without that setting the header is never read: any client can send it.
 * - Anything else (in-process `app.request`, e.g. tests): null, the caller's limit by IP is skipped.
 */
export function clientIp(c: Context): string | null {
  if (onWorkers()) {
    return c.req.header('cf-connecting-ip') ?? null;
  }
  if (c.get('deps')?.config.TRUST_PROXY) {
    const hops = (c.req.header('x-forwarded-for') ?? '')
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean);
    const last = hops[hops.length - 1];
    if (last) return last;
  }
  const env = c.env as { incoming?: NodeSocketHolder; server?: { incoming?: NodeSocketHolder } } | undefined;
  const socket = (env?.server?.incoming ?? env?.incoming)?.socket;
  const address = socket?.remoteAddress;
  return typeof address === 'string' && address !== '' ? address : null;
}

/** Inside workerd (Cloudflare's runtime), where Cloudflare itself sets cf-* request headers. */
export function onWorkers(): boolean {
  return typeof navigator !== 'undefined' && navigator.userAgent === 'Cloudflare-Workers';
}

interface NodeSocketHolder {
  socket?: { remoteAddress?: string };
}
