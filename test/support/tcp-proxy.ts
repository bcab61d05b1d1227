/**
 * A TCP proxy between the server and its database that injects faults (the fault suite and
 * `npm run bench -- --faults`):
 * - pause(): bytes stop flowing both ways, connections stay open (a hung server, a network stall);
 *   new connections are accepted and stall too;
 * - drop(): every open connection is reset (a failover, a restart, a firewall);
 * - refuse(): new connections are closed at once (the server is down);
 * - heal(): back to forwarding; paused bytes are delivered.
 */
import net from 'node:net';

export type ProxyMode = 'forward' | 'pause' | 'refuse';

export interface TcpProxy {
  port: number;
  /** the same URL with host:port replaced by the proxy's */
  url(target: string): string;
  pause(): void;
  refuse(): void;
  drop(): void;
  heal(): void;
  readonly mode: ProxyMode;
  /** open client connections (server side of the proxy) */
  readonly open: number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let mode: ProxyMode = 'forward';
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();

  const server = net.createServer((client) => {
    if (mode === 'refuse') return client.destroy();
    const upstream = net.connect(targetPort, targetHost);
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
    if (mode === 'pause') setPaused(pair, true);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;

  function setPaused(p: { client: net.Socket; upstream: net.Socket }, paused: boolean) {
    // Unpiping stops the forwarding; pausing stops reading, so the bytes wait in the kernel.
    if (paused) {
      p.client.unpipe(p.upstream);
      p.upstream.unpipe(p.client);
      p.client.pause();
      p.upstream.pause();
    } else {
      p.client.pipe(p.upstream);
      p.upstream.pipe(p.client);
      p.client.resume();
      p.upstream.resume();
    }
  }

  return {
    port,
    url(target) {
      const u = new URL(target);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    pause() {
      if (mode !== 'pause') for (const p of pairs) setPaused(p, true);
      mode = 'pause';
    },
    refuse() {
      if (mode === 'pause') for (const p of pairs) setPaused(p, false);
      mode = 'refuse';
    },
    drop() {
      for (const p of [...pairs]) {
        p.client.resetAndDestroy();
        p.upstream.destroy();
      }
      pairs.clear();
    },
    heal() {
      if (mode === 'pause') for (const p of pairs) setPaused(p, false);
      mode = 'forward';
    },
    get mode() {
      return mode;
    },
    get open() {
      return pairs.size;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const p of pairs) {
          p.client.destroy();
          p.upstream.destroy();
        }
        server.close(() => r());
      }),
  };
}
