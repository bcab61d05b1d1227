/** Node's way to a registered gateway (src/gateways/reach.ts): no Hyperdrive bindings; TCP to AM.PDP. */
import net from 'node:net';
import { WebSocket } from 'ws';
import { parseHostPort } from '../amavis/pdp-client.node.ts';
import { openDatabase } from '../db/connect.ts';
import type { GatewayReach } from './reach.ts';

export const nodeGatewayReach: GatewayReach = {
  runtime: 'node',
  hyperdrive: () => null,
  openDatabase: (url, o) =>
    openDatabase({
      url,
      runtime: 'node',
      poolSize: o.poolSize ?? 1,
      webSocket: WebSocket,
      timeouts: o.timeouts ?? { connectMs: o.ms, queryMs: o.ms, lockMs: o.ms },
      origin: o.origin,
    }),
  // Connect and close at once: nothing is sent, so amavisd's child only sees a connection end.
  tcpConnect: (hostPort, ms) =>
    new Promise<void>((resolve, reject) => {
      const { host, port } = parseHostPort(hostPort);
      const socket = net.connect({ host, port });
      const done = (err: Error | null) => {
        clearTimeout(timer);
        socket.removeAllListeners();
        socket.on('error', () => {});
        socket.destroy();
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => done(Object.assign(new Error(`no connection within ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
      socket.once('connect', () => done(null));
      socket.once('error', (err) => done(err));
    }),
};
