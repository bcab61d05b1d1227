/**
 * AM.PDP over TCP (node:net): one connection per request, closed after the reply. A reply counts
 * only once amavisd has sent its terminating empty line. Failures are of two kinds:
 *  - before the request was written (refused, unreachable, no connection in time): nothing reached
 *    amavisd: 'upstream_unreachable';
 *  - after it was written (a timeout, a reset, a connection closed before the empty line): amavisd
 *    may have acted on it (a release delivers before amavisd answers): 'release_outcome_unknown'.
 */
import net from 'node:net';
import { AppError } from '../errors.ts';
import type { PdpLimit } from '../release/limit.ts';
import type { ReleaseTransport } from '../release/transport.ts';
import { decodeReply, encodeRequest, endOfMessage, releaseAttributes, toReleaseReply, type PdpAttributes } from './pdp.ts';

export interface PdpClientOptions {
  /** until the TCP connection is up (default 3000 ms) */
  connectTimeoutMs?: number;
  /** from sending the request until the complete reply (default 30000 ms; a release delivers by SMTP first) */
  replyTimeoutMs?: number;
  /** a reply larger than this is refused (default 1 MiB) */
  maxReplyBytes?: number;
  /** the process's bound on concurrent AM.PDP connections (AMAVISD_PDP_CONCURRENCY); none: unbounded */
  limit?: PdpLimit;
}

export function parseHostPort(hostPort: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(hostPort.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new AppError('release_not_configured', `AMAVISD_PDP must be host:port (e.g. 127.0.0.1:9998), got ${JSON.stringify(hostPort)}`);
  }
  return { host: (m[1] ?? m[2])!, port };
}

const unreachable = (where: string, what: string) => new AppError('upstream_unreachable', `amavisd AM.PDP at ${where}: ${what}`);
const unknown = (where: string, what: string) =>
  new AppError('release_outcome_unknown', `amavisd AM.PDP at ${where}: ${what}, after the request was sent: amavisd may have acted on it`);

function describeSocketError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused (is amavisd running, with this port in $inet_socket_port and an AM.PDP policy bank?)';
    case 'ECONNRESET':
      return 'connection reset by amavisd';
    case 'EPIPE':
      return 'connection closed while sending the request';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `host unreachable (${err.code})`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host name does not resolve (${err.code})`;
    default:
      return `${err.code ?? 'socket error'}: ${err.message}`;
  }
}

export function pdpRequest(hostPort: string, attrs: PdpAttributes, opts: PdpClientOptions = {}): Promise<PdpAttributes> {
  const { host, port } = parseHostPort(hostPort);
  const connectTimeoutMs = opts.connectTimeoutMs ?? 3000;
  const replyTimeoutMs = opts.replyTimeoutMs ?? 30_000;
  const maxReplyBytes = opts.maxReplyBytes ?? 1024 * 1024;
  const request = encodeRequest(attrs);
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;

  return new Promise<PdpAttributes>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let connected = false;
    /** from the first byte written on, a failure no longer means "nothing happened" */
    let sent = false;
    const fail = (what: string) => (sent ? unknown(where, what) : unreachable(where, what));
    let settled = false;
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);

    const finish = (err: AppError | null, reply?: PdpAttributes) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      // An error after this point (e.g. a late reset) must not crash the process.
      socket.on('error', () => {});
      if (err) {
        socket.destroy();
        return reject(err);
      }
      // The amavisd child is busy until it has seen our end of the connection: the exchange (and
      // its slot in the concurrency limit) ends when the connection is closed, at most 1 s later.
      const closed = setTimeout(() => socket.destroy(), 1000);
      socket.once('close', () => {
        clearTimeout(closed);
        resolve(reply!);
      });
      socket.end();
    };

    let timer = setTimeout(() => finish(unreachable(where, `no connection within ${connectTimeoutMs} ms`)), connectTimeoutMs);

    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(() => finish(fail(`no complete reply within ${replyTimeoutMs} ms (${received} bytes received)`)), replyTimeoutMs);
      sent = true;
      socket.write(request);
    });

    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const end = endOfMessage(all);
      if (end >= 0) return finish(null, decodeReply(all.subarray(0, end)));
      if (received > maxReplyBytes) finish(fail(`reply larger than ${maxReplyBytes} bytes without its end line`));
    });

    socket.on('error', (err: NodeJS.ErrnoException) => finish(fail(describeSocketError(err))));

    socket.on('close', () =>
      finish(
        fail(
          connected
            ? `connection closed before the reply was complete (${received} bytes received, no terminating empty line)`
            : 'connection closed before it was established',
        ),
      ),
    );
  });
}

/**
 * One AM.PDP exchange inside the limit: the slot is taken first, then `beforeSend` runs (the release
 * verb records its attempt there), then the request goes out; the slot is given back after the reply.
 */
export async function limitedPdpRequest(
  hostPort: string,
  attrs: PdpAttributes,
  opts: PdpClientOptions = {},
  beforeSend?: () => Promise<void>,
): Promise<PdpAttributes> {
  const done = opts.limit ? await opts.limit.acquire() : () => {};
  try {
    if (beforeSend) await beforeSend();
    return await pdpRequest(hostPort, attrs, opts);
  } finally {
    done();
  }
}

/** Release straight to amavisd's AM.PDP port: Node beside amavisd (`AMAVISD_PDP`). */
export function directTransport(hostPort: string, opts: PdpClientOptions = {}): ReleaseTransport {
  parseHostPort(hostPort);
  return {
    kind: 'direct',
    async release(req, beforeSend) {
      const attrs = releaseAttributes(req);
      return toReleaseReply(await limitedPdpRequest(hostPort, attrs, opts, beforeSend), 'direct', req.secretId);
    },
  };
}
