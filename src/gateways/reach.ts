/**
 * How /readyz reaches a registered gateway, by runtime: a Worker resolves a Hyperdrive binding by
 * name and cannot open a TCP connection to AM.PDP; Node has no bindings and can (reach.node.ts).
 */
import { openDatabase, type DbHandle } from '../db/connect.ts';

export interface GatewayReach {
  runtime: 'node' | 'worker';
  /** the connection string of the Hyperdrive binding `name`, or null (none by that name; Node: never) */
  hyperdrive(name: string): string | null;
  /** one connection to a gateway's database, bounded by `ms` to connect and per statement */
  openDatabase(url: string, opts: { hyperdrive: boolean; ms: number }): Promise<DbHandle>;
  /** open a TCP connection to host:port and close it; absent where that is not possible (Workers) */
  tcpConnect?(hostPort: string, ms: number): Promise<void>;
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
        timeouts: { connectMs: o.ms, queryMs: o.ms, lockMs: o.ms },
      }),
  };
}
