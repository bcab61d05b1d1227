/**
 * Entering a registered gateway (README "Gateways: who sees what"): the Deps of one request or job
 * whose amavisd database and release path are that gateway's, with the deployment's state database
 * (our qe_* tables) as ever. The verbs are the same; only `db`, `variant`, `release` and `gateway`
 * differ, so every query a verb makes is limited to that gateway's database by construction.
 *
 * Node keeps one small pool per gateway (and per version of its row: a changed row opens a new one);
 * a Worker opens a connection per request and closes it, as it does for its own database.
 */
import { detectSchema, type SchemaVariant } from '../amavis/schema.ts';
import { dbTimeouts } from '../config.ts';
import type { DbHandle } from '../db/connect.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { relayFetch } from '../release/relay-fetch.ts';
import { relayTransport } from '../release/relay-protocol.ts';
import type { ReleaseTransport } from '../release/transport.ts';
import type { GatewayReach } from './reach.ts';
import { keyringFromConfig, open, SecretUnavailable, type Keyring } from './secrets.ts';

export interface EnteredGateway {
  deps: Deps;
  /** give the gateway's connection back (Workers: close it; Node: the pool stays) */
  release(): Promise<void>;
}

export interface GatewayOpener {
  /** `base`: the request's own Deps (its state database reads the registry row). 404 for no such gateway. */
  enter(base: Deps, id: string): Promise<EnteredGateway>;
  /** Node: close every gateway's pool (a CLI run ends, or the process stops); Workers: nothing is kept */
  close?(): Promise<void>;
}

interface Opened {
  handle: DbHandle;
  variant: SchemaVariant;
  release: ReleaseTransport | null;
}

/** Node's pools per gateway: a few connections each (many gateways share one process). */
const NODE_POOL = 4;

/**
 * How this runtime enters registered gateways. `pdp`: how it reaches an AM.PDP port (Node), null
 * where it cannot (Workers: such a gateway's release answers 503 naming it).
 */
export function gatewayOpener(reach: GatewayReach | undefined, pdp: ((hostPort: string) => ReleaseTransport) | null): GatewayOpener {
  let ring: Promise<Keyring> | null = null;
  // Node: opened gateways by `${id}@${updated_at}`; an older version is closed when a newer opens
  const pools = new Map<string, Promise<Opened>>();
  const latest = new Map<string, string>();

  async function openGateway(base: Deps, row: GatewayRow, pooled: boolean): Promise<Opened> {
    if (!reach) throw unavailable(row.id, 'this runtime cannot reach registered gateways');
    ring ??= keyringFromConfig(base.config);
    const keys = await ring;
    let url: string;
    let hyperdrive = false;
    if (row.database_kind === 'hyperdrive') {
      const bound = reach.hyperdrive(row.hyperdrive_binding ?? '');
      if (!bound) throw unavailable(row.id, `no Hyperdrive binding named ${row.hyperdrive_binding} here`);
      url = bound;
      hyperdrive = true;
    } else {
      url = await openSecret(keys, row.id, 'database_url', row.database_url_sealed);
    }
    const timeouts = dbTimeouts(base.config);
    let handle: DbHandle;
    try {
      handle = await reach.openDatabase(url, { hyperdrive, ms: timeouts.connectMs, timeouts, poolSize: pooled ? NODE_POOL : 1 });
    } catch (err) {
      base.log.warn('gateway database not reachable', { gateway: row.id, message: (err as Error).message });
      throw unavailable(row.id, 'its database is not reachable');
    }
    try {
      const variant = await detectSchema(handle.db, handle.dialect);
      return { handle, variant, release: await releaseOf(base, keys, row, pdp) };
    } catch (err) {
      await handle.close().catch(() => {});
      if (err instanceof AppError) throw err;
      base.log.warn('gateway database not usable', { gateway: row.id, message: (err as Error).message });
      throw unavailable(row.id, "its database does not answer as amavisd's does");
    }
  }

  return {
    async close() {
      const open = [...pools.values()];
      pools.clear();
      latest.clear();
      await Promise.all(open.map((p) => p.then((o) => o.handle.close()).catch(() => {})));
    },
    async enter(base, id) {
      const row = await base.state.selectFrom('qe_gateways').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new AppError('not_found', 'no gateway with this id');
      const pooled = reach?.runtime === 'node';
      let opened: Opened;
      if (pooled) {
        const version = `${id}@${row.updated_at}`;
        let p = pools.get(version);
        if (!p) {
          p = openGateway(base, row, true);
          pools.set(version, p);
          // a failed open is tried again by the next request
          p.catch(() => pools.delete(version));
          const older = latest.get(id);
          latest.set(id, version);
          if (older && older !== version) {
            const gone = pools.get(older);
            pools.delete(older);
            void gone?.then((o) => o.handle.close()).catch(() => {});
          }
        }
        opened = await p;
      } else {
        opened = await openGateway(base, row, false);
      }
      const deps: Deps = { ...base, db: opened.handle.db, variant: opened.variant, gateway: id, stateApart: true, release: opened.release };
      // reports to the spam filter go to the deployment's own learner only: not a gateway's mail
      deps.learner = null;
      return { deps, release: pooled ? async () => {} : () => opened.handle.close().catch(() => {}) };
    },
  };
}

type GatewayRow = {
  id: string;
  database_kind: string;
  hyperdrive_binding: string | null;
  database_url_sealed: string | null;
  release_kind: string;
  pdp_address: string | null;
  relay_url: string | null;
  relay_secret_sealed: string | null;
};

async function releaseOf(
  base: Deps,
  keys: Keyring,
  row: GatewayRow,
  pdp: ((hostPort: string) => ReleaseTransport) | null,
): Promise<ReleaseTransport | null> {
  if (row.release_kind === 'relay' && row.relay_url) {
    const secret = await openSecret(keys, row.id, 'relay_secret', row.relay_secret_sealed);
    return relayTransport(row.relay_url, secret, relayFetch(base.config));
  }
  // null: a release answers 503 release_not_configured (a Worker cannot reach AM.PDP)
  if (row.release_kind === 'pdp' && row.pdp_address && pdp) return pdp(row.pdp_address);
  return null;
}

async function openSecret(keys: Keyring, id: string, column: string, sealed: string | null): Promise<string> {
  try {
    return await open(keys, id, column, sealed ?? '');
  } catch (err) {
    if (err instanceof SecretUnavailable) throw unavailable(id, `its ${column.replace('_', ' ')} cannot be opened: ${err.message}`);
    throw err;
  }
}

function unavailable(id: string, why: string): AppError {
  return new AppError('gateway_unavailable', `gateway ${id}: ${why}; try again shortly`, { retryAfter: 5, gateway: id });
}
