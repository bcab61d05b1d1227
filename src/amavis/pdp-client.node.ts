/**
 * AM.PDP over TCP (node:net): one connection per request, closed after the reply. A reply counts
 * only once amavisd has sent its terminating empty line; a refused or reset connection, a timeout,
 * or a connection closed before that line is an error: then nothing is known to have happened.
 */
import net from 'node:net';
import { AppError } from '../errors.ts';
import type { ReleaseTransport } from '../release/transport.ts';
import { decodeReply, encodeRequest, endOfMessage, releaseAttributes, toReleaseReply, type PdpAttributes } from './pdp.ts';

export interface PdpClientOptions {
  /** until the TCP connection is up (default 3000 ms) */
  connectTimeoutMs?: number;
  /** from sending the request until the complete reply (default 30000 ms; a release delivers by SMTP first) */
  replyTimeoutMs?: number;
  /** a reply larger than this is refused (default 1 MiB) */
  maxReplyBytes?: number;
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
      if (err) socket.destroy();
      else socket.end();
      if (err) reject(err);
      else resolve(reply!);
    };

    let timer = setTimeout(
      () => finish(unreachable(where, `no connection within ${connectTimeoutMs} ms`)),
      connectTimeoutMs,
    );

    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(
        () => finish(unreachable(where, `no complete reply within ${replyTimeoutMs} ms (${received} bytes received)`)),
        replyTimeoutMs,
      );
      socket.write(request);
    });

    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const end = endOfMessage(all);
      if (end >= 0) return finish(null, decodeReply(all.subarray(0, end)));
      if (received > maxReplyBytes) finish(unreachable(where, `reply larger than ${maxReplyBytes} bytes without its end line`));
    });

    socket.on('error', (err: NodeJS.ErrnoException) => finish(unreachable(where, describeSocketError(err))));

    socket.on('close', () =>
      finish(
        unreachable(
          where,
          connected
            ? `connection closed before the reply was complete (${received} bytes received, no terminating empty line)`
            : 'connection closed before it was established',
        ),
      ),
    );
  });
}

/** Release straight to amavisd's AM.PDP port: Node beside amavisd (`AMAVISD_PDP`). */
export function directTransport(hostPort: string, opts: PdpClientOptions = {}): ReleaseTransport {
  parseHostPort(hostPort);
  return {
    kind: 'direct',
    async release(req) {
      const attrs = releaseAttributes(req);
      return toReleaseReply(await pdpRequest(hostPort, attrs, opts), 'direct', req.secretId);
    },
  };
}
