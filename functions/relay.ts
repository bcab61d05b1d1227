/**
 * The on-host relay on Node (`quarantine-edge relay`): signed HTTP in on RELAY_PORT, AM.PDP out to
 * AMAVISD_PDP (default 127.0.0.1:9998, the only address amavisd's release port accepts).
 * It listens on loopback unless told otherwise: put a TLS reverse proxy (or a tunnel) in front.
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { pdpRequest, parseHostPort, type PdpClientOptions } from '../src/amavis/pdp-client.node.ts';
import { consoleLogger, systemClock, type Clock, type Logger } from '../src/deps.ts';
import { commandLearner } from '../src/learn/command.node.ts';
import { createRelayApp, type ReplayCache } from '../src/relay/app.ts';
import { pdpLimit, type PdpLimitOptions } from '../src/release/limit.ts';

export const DEFAULT_AMAVISD_PDP = '127.0.0.1:9998';

export interface RelayOptions {
  secret: string;
  /** amavisd's AM.PDP host:port */
  pdp?: string;
  port?: number;
  host?: string;
  pdpOptions?: PdpClientOptions;
  /** concurrent AM.PDP connections and how long a request waits for one (AMAVISD_PDP_CONCURRENCY) */
  limit?: PdpLimitOptions;
  /** SA_LEARN_COMMAND: reports to the spam filter run here (POST /v1/learn); absent: 501 */
  learnCommand?: string;
  clock?: Clock;
  log?: Logger;
  replayCache?: ReplayCache;
}

export interface RunningRelay {
  /** http://host:port, for RELAY_URL */
  url: string;
  port: number;
  server: ServerType;
  close(): Promise<void>;
}

export async function startRelay(opts: RelayOptions): Promise<RunningRelay> {
  const pdp = opts.pdp ?? DEFAULT_AMAVISD_PDP;
  parseHostPort(pdp);
  const app = createRelayApp({
    secret: opts.secret,
    pdp: (attrs) => pdpRequest(pdp, attrs, opts.pdpOptions),
    limit: pdpLimit(opts.limit),
    learner: opts.learnCommand ? commandLearner(opts.learnCommand) : null,
    clock: opts.clock ?? systemClock,
    log: opts.log ?? consoleLogger,
    replayCache: opts.replayCache,
  });
  const host = opts.host ?? '127.0.0.1';
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: opts.port ?? 0, hostname: host }, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // keep-alive connections would hold close() open
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}
