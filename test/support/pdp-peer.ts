/**
 * Small AM.PDP peers for tests: a TCP server on 127.0.0.1 that records the raw bytes of every
 * request and answers as told (fully, half, never, or by closing).
 */
import net from 'node:net';
import { decodeReply, encodeRequest, endOfMessage, type PdpAttributes } from '../../src/amavis/pdp.ts';

export type PeerBehaviour =
  /** amavisd's answer: one 250 setreply per recipient (or what `reply` returns) */
  | { kind: 'reply'; reply?: (request: PdpAttributes) => PdpAttributes; trickle?: boolean; delayMs?: number }
  /** sends the first `bytes` of a full answer, then closes */
  | { kind: 'half'; bytes?: number }
  /** reads the request and never answers */
  | { kind: 'silent' }
  /** answers the first `n` requests as amavisd would, then holds every later one (never answers) */
  | { kind: 'first'; n: number }
  /** closes as soon as the request is complete */
  | { kind: 'close' }
  /** resets the connection as soon as the request is complete */
  | { kind: 'reset' };

export interface PdpPeer {
  hostPort: string;
  port: number;
  /** raw bytes of each complete request received, in order */
  received: Buffer[];
  /** connections open right now, and the most that were ever open at once */
  open: number;
  maxOpen: number;
  requests(): PdpAttributes[];
  close(): Promise<void>;
}

export function okReply(request: PdpAttributes): PdpAttributes {
  const rcpts = request.filter(([k]) => k === 'recipient');
  if (rcpts.length === 0) return [['setreply', '250 2.5.0 No recipients, nothing to do']];
  return rcpts.map(([, r], i) => ['setreply', `250 2.0.0 Ok, id=peer${i}, from MTA: 250 2.0.0 Ok: queued (for ${r})`]);
}

/** One byte per write, a millisecond apart: the client must not take a partial reply as complete. */
async function trickle(socket: net.Socket, data: Buffer): Promise<void> {
  for (const b of data) {
    if (socket.destroyed) return;
    socket.write(Buffer.from([b]));
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * `behaviour` is read at each request, so a test may change it (e.g. cut the next reply) between
 * requests.
 */
export async function startPdpPeer(behaviour: PeerBehaviour = { kind: 'reply' }): Promise<PdpPeer> {
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const peer: PdpPeer = {
    hostPort: '',
    port: 0,
    received,
    open: 0,
    maxOpen: 0,
    requests: () => received.map((r) => decodeReply(r)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    peer.open++;
    peer.maxOpen = Math.max(peer.maxOpen, peer.open);
    socket.on('close', () => {
      sockets.delete(socket);
      peer.open--;
    });
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = endOfMessage(buf);
      if (end < 0) return;
      const raw = buf.subarray(0, end);
      buf = buf.subarray(end);
      received.push(Buffer.from(raw));
      const request = decodeReply(raw);
      const full = Buffer.from(encodeRequest((behaviour.kind === 'reply' && behaviour.reply ? behaviour.reply : okReply)(request)));
      switch (behaviour.kind) {
        case 'reply':
          if (behaviour.delayMs) setTimeout(() => socket.destroyed || socket.write(full), behaviour.delayMs);
          else if (!behaviour.trickle) socket.write(full);
          else void trickle(socket, full);
          break;
        case 'half':
          socket.end(full.subarray(0, behaviour.bytes ?? Math.floor(full.length / 2)));
          break;
        case 'silent':
          break;
        case 'first':
          if (received.length <= behaviour.n) socket.write(full);
          break;
        case 'close':
          socket.end();
          break;
        case 'reset':
          socket.resetAndDestroy();
          break;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  peer.hostPort = `127.0.0.1:${port}`;
  peer.port = port;
  return peer;
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
