/**
 * How /readyz reaches a registered gateway, by runtime: a Worker resolves a Hyperdrive binding by
 * name and cannot open a TCP connection to AM.PDP; Node has no bindings and can (reach.node.ts).
 */
import { openDatabase, type DbHandle } from '../db/connect.ts';
import type { DbTimeouts } from '../db/bounded.ts';

export interface GatewayReach {
  runtime: 'node' | 'worker';
  /** the connection string of the Hyperdrive binding `name`, or null (none by that name; Node: never) */
  hyperdrive(name: string): string | null;
  /**
   * A gateway's database, bounded by `ms` to connect and per statement (or by `timeouts`, a
   * request's); one connection unless `poolSize` (Node, serving requests: src/gateways/context.ts).
   */
  openDatabase(url: string, opts: GatewayOpen): Promise<DbHandle>;
  /** open a TCP connection to host:port and close it; absent where that is not possible (Workers) */
  tcpConnect?(hostPort: string, ms: number): Promise<void>;
}

export interface GatewayOpen {
  hyperdrive: boolean;
  ms: number;
  poolSize?: number;
  timeouts?: DbTimeouts;
  /** the gateway's id: its database's errors carry it (src/db/error-origin.ts), so they answer as its own */
  origin?: string;
}

interface HyperdriveBinding {
  connectionString: string;
}

/** A Worker's: bindings from its env; AM.PDP is reached from Node only (through a relay here). */
export function workerGatewayReach(env: Record<string, unknown>): GatewayReach {
  return {
    runtime: 'worker',
    hyperdrive(name) {
      const b = env[name] as HyperdriveBinding | undefined;
      return typeof b?.connectionString === 'string' ? b.connectionString : null;
    },
    openDatabase: (url, o) =>
      openDatabase({
        url,
        runtime: 'worker',
        poolSize: 1,
        hyperdrive: o.hyperdrive,
        timeouts: o.timeouts ?? { connectMs: o.ms, queryMs: o.ms, lockMs: o.ms },
        origin: o.origin,
      }),
  };
}
