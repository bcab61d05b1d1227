import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { statusError, type Attempt, type WebhookPost } from './post.ts';
import { privateAddress } from './url.ts';

/** Every address of a name, as the system resolver answers (hosts file, then DNS). */
export type Resolve = (host: string, cb: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;
const systemResolve: Resolve = (host, cb) => dnsLookup(host, { all: true }, cb);

export const REFUSED = 'refused: resolves to a private address';

class PrivateAddressError extends Error {
  code = 'EPRIVATEADDRESS';
}

/**
 * The socket's `lookup`. A name is refused when ANY of its addresses is private (the socket may try
 * any of them); otherwise the socket connects to exactly the addresses checked here, with no second
 * DNS query, so a name that changes its answer after the check (DNS rebinding) gains nothing.
 * `allowPrivate` (WEBHOOK_ALLOW_PRIVATE) skips the check only.
 */
export function guardedLookup(resolve: Resolve = systemResolve, allowPrivate = false): LookupFunction {
  return (host, options, callback) => {
    resolve(host, (err, addresses) => {
      if (err) return callback(err, '');
      const bad = allowPrivate ? undefined : addresses.find((a) => privateAddress(a.address));
      // The address itself is not said: the error is shown to the subscription's owner (a domain
      // admin), and the operator's internal DNS answers are none of theirs.
      if (bad) return callback(new PrivateAddressError(REFUSED), '');
      const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
      const usable = family === 4 || family === 6 ? addresses.filter((a) => a.family === family) : addresses;
      const first = usable[0];
      if (!first) return callback(Object.assign(new Error(`${host} has no usable address`), { code: 'ENOTFOUND' }), '');
      // Node 20 asks for all addresses (happy eyeballs) unless a family is forced
      if (options.all) callback(null, usable);
      else callback(null, first.address, first.family);
    });
  };
}

/**
 * Node's webhook transport (the service runs beside the mail server, inside the operator's network):
 * node:http(s) with guardedLookup. Same contract as fetchPost: POST, no redirects, one timeout over
 * the whole request (connect included), response body discarded.
 */
export function nodePost(resolve?: Resolve): WebhookPost {
  const checked = guardedLookup(resolve);
  const unchecked = guardedLookup(resolve, true);
  return (url, body, headers, { timeoutMs, allowPrivate }) =>
    new Promise<Attempt>((done) => {
      const started = Date.now();
      let req: ClientRequest | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let settled = false;
      const finish = (status: number | null, error: string | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req?.destroy();
        done({ status, error: error?.slice(0, 500) ?? null, ms: Date.now() - started });
      };
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        return finish(null, 'request failed: not a URL');
      }
      // An IP literal never reaches `lookup` (net connects to it directly): checked here.
      const literal = target.hostname.replace(/^\[(.*)\]$/, '$1');
      if (!allowPrivate && isIP(literal) && privateAddress(literal)) return finish(null, REFUSED);
      const send = target.protocol === 'https:' ? httpsRequest : target.protocol === 'http:' ? httpRequest : null;
      if (!send) return finish(null, `request failed: unsupported protocol ${target.protocol}`);

      timer = setTimeout(() => finish(null, `no answer within ${timeoutMs} ms`), timeoutMs);
      req = send(
        target,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          agent: false, // a fresh connection each time: nothing pooled outlives the attempt
          lookup: allowPrivate ? unchecked : checked,
        },
        (res) => {
          const status = res.statusCode ?? null;
          finish(status, status === null ? 'request failed: no status' : statusError(status)); // destroys the socket: body never read
        },
      );
      req.on('error', (err) => finish(null, err instanceof PrivateAddressError ? err.message : `request failed: ${err.message}`));
      req.end(body);
    });
}

export const nodeWebhookPost: WebhookPost = nodePost();
