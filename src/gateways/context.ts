/**
 * Entering a registered gateway (README "Gateways: who sees what"): the Deps of one request or job
 * whose amavisd database and release path are that gateway's, with the deployment's state database
 * (our qe_* tables) as ever. The verbs are the same; only `db`, `variant`, `release` and `gateway`
 * differ, so every query a verb makes is limited to that gateway's database by construction.
 *
 * Node keeps one small pool per gateway (and per version of its row: a changed row opens a new one);
 * a Worker opens a connection per request and closes it, as it does for its own database.
 */
import { parseFromValue } from '../mail/from-address.ts';
import { detectSchema, type SchemaVariant } from '../amavis/schema.ts';
import { dbTimeouts, type Config } from '../config.ts';
import { overridesOver, type TemplateOverrides } from '../digest/render.ts';
import type { DbHandle } from '../db/connect.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { relayFetch } from '../release/relay-fetch.ts';
import { relayTransport } from '../release/relay-protocol.ts';
import { parseRouteTarget, routedTransport } from '../release/routes.ts';
import type { ReleaseTransport } from '../release/transport.ts';
import type { GatewayReach } from './reach.ts';
import { sha256Hex } from '../crypto/sha256.ts';
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

/** One version of a gateway's pool (Node): closed when retired and no request uses it. */
interface Pool {
  opening: Promise<Opened>;
  users: number;
  retired: boolean;
  close(): void;
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
export function gatewayOpener(
  reach: GatewayReach | undefined,
  pdp: ((hostPort: string) => ReleaseTransport) | null,
  /** templates/gateways/<id>/ on Node (src/digest/templates.node.ts); Workers: none, the bundled defaults */
  templates: ReadonlyMap<string, TemplateOverrides> = new Map(),
): GatewayOpener {
  let ring: Promise<Keyring> | null = null;
  // Node: opened gateways by `${id}@${reachVersion(row)}`. A version a newer one (or the gateway's
  // removal) replaced is closed once the requests still using it are done, never under them.
  const pools = new Map<string, Pool>();
  const latest = new Map<string, string>();
  const retire = (version: string | undefined) => {
    const pool = version === undefined ? undefined : pools.get(version);
    if (!pool) return;
    pools.delete(version!);
    pool.retired = true;
    if (pool.users === 0) pool.close();
  };

  async function openGateway(base: Deps, row: GatewayRow, pooled: boolean): Promise<Opened> {
    if (!reach) throw gatewayUnavailable(row.id, 'this runtime cannot reach registered gateways');
    ring ??= keyringFromConfig(base.config);
    const keys = await ring;
    let url: string;
    let hyperdrive = false;
    if (row.database_kind === 'hyperdrive') {
      const bound = reach.hyperdrive(row.hyperdrive_binding ?? '');
      if (!bound) throw gatewayUnavailable(row.id, `no Hyperdrive binding named ${row.hyperdrive_binding} here`);
      url = bound;
      hyperdrive = true;
    } else {
      url = await openSecret(keys, row.id, 'database_url', row.database_url_sealed);
    }
    const timeouts = dbTimeouts(base.config);
    let handle: DbHandle;
    try {
      handle = await reach.openDatabase(url, {
        hyperdrive,
        ms: timeouts.connectMs,
        timeouts,
        poolSize: pooled ? NODE_POOL : 1,
        origin: row.id,
      });
    } catch (err) {
      base.log.warn('gateway database not reachable', { gateway: row.id, message: (err as Error).message });
      throw gatewayUnavailable(row.id, 'its database is not reachable');
    }
    try {
      const variant = await detectSchema(handle.db, handle.dialect);
      return { handle, variant, release: await releaseOf(base, keys, row, pdp) };
    } catch (err) {
      await handle.close().catch(() => {});
      if (err instanceof AppError) throw err;
      base.log.warn('gateway database not usable', { gateway: row.id, message: (err as Error).message });
      throw gatewayUnavailable(row.id, "its database does not answer as amavisd's does");
    }
  }

  return {
    async close() {
      const open = [...pools.values()];
      pools.clear();
      latest.clear();
      await Promise.all(open.map((p) => p.opening.then((o) => o.handle.close()).catch(() => {})));
    },
    async enter(base, id) {
      const row = await base.state.selectFrom('qe_gateways').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) {
        // removed: its pool (if any) goes once its last request is done
        retire(latest.get(id));
        latest.delete(id);
        throw new AppError('not_found', 'no gateway with this id');
      }
      const pooled = reach?.runtime === 'node';
      let opened: Opened;
      let done: () => Promise<void>;
      if (pooled) {
        const version = `${id}@${reachVersion(row)}`;
        let pool = pools.get(version);
        if (!pool) {
          const opening = openGateway(base, row, true);
          const made: Pool = {
            opening,
            users: 0,
            retired: false,
            close: () => void opening.then((o) => o.handle.close()).catch(() => {}),
          };
          pool = made;
          pools.set(version, made);
          // a failed open is tried again by the next request
          opening.catch(() => pools.get(version) === made && pools.delete(version));
          const older = latest.get(id);
          latest.set(id, version);
          if (older !== version) retire(older);
        }
        const using = pool;
        using.users++;
        done = async () => {
          using.users--;
          if (using.retired && using.users === 0) using.close();
        };
        try {
          opened = await using.opening;
        } catch (err) {
          await done();
          throw err;
        }
      } else {
        opened = await openGateway(base, row, false);
        done = () => opened.handle.close().catch(() => {});
      }
      const deps: Deps = {
        ...base,
        config: withGatewayFrom(base.config, row.mail_from),
        db: opened.handle.db,
        variant: opened.variant,
        gateway: id,
        stateApart: true,
        release: opened.release,
        // its own templates over the deployment's
        templates: overridesOver(base.templates, templates.get(id)),
      };
      // reports to the spam filter go to the deployment's own learner only: not a gateway's mail
      deps.learner = null;
      return { deps, release: done };
    },
  };
}

/**
 * What decides how a gateway is reached, as one value: a pool is reused only while this is unchanged.
 * Not updated_at, which counts seconds: a second change within the same second (a typo put right,
 * an address switched back) kept the previous address's pool and release path.
 */
function reachVersion(r: GatewayRow): string {
  const reach = [r.database_kind, r.hyperdrive_binding, r.database_url_sealed, r.release_kind, r.pdp_address];
  return sha256Hex(JSON.stringify([...reach, r.relay_url, r.relay_secret_sealed, r.release_hosts]));
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
  release_hosts: string | null;
};

/**
 * The gateway's release path, and with release_hosts each amavisd host's own (routed by msgs.host,
 * as RELEASE_ROUTES is for the deployment's own database: src/release/routes.ts).
 */
async function releaseOf(
  base: Deps,
  keys: Keyring,
  row: GatewayRow,
  pdp: ((hostPort: string) => ReleaseTransport) | null,
): Promise<ReleaseTransport | null> {
  let secret: string | null = null;
  let fallback: ReleaseTransport | null = null;
  if (row.release_kind === 'relay' && row.relay_url) {
    secret = await openSecret(keys, row.id, 'relay_secret', row.relay_secret_sealed);
    fallback = relayTransport(row.relay_url, secret, relayFetch(base.config));
  }
  // null: a release answers 503 release_not_configured (a Worker cannot reach AM.PDP)
  if (row.release_kind === 'pdp' && row.pdp_address && pdp) fallback = pdp(row.pdp_address);
  const hosts = row.release_hosts ? (JSON.parse(row.release_hosts) as Record<string, string>) : null;
  if (!hosts) return fallback;
  const routes = new Map<string, ReleaseTransport>();
  for (const [host, text] of Object.entries(hosts)) {
    const target = parseRouteTarget(text);
    if (typeof target === 'string') continue; // checked when stored
    if ('relay' in target && secret !== null) routes.set(host, relayTransport(target.relay, secret, relayFetch(base.config)));
    else if ('pdp' in target && pdp) routes.set(host, pdp(target.pdp));
    // never the default path for a host that has its own: refused before anything is sent
    else routes.set(host, unreachableHost(row.id, host));
  }
  return routedTransport(routes, fallback);
}

/**
 * A gateway's own From (its mail_from): its digests and mail about its quarantine come from that
 * address (with DIGEST_FROM's display name), and the mail it releases is Resent-From it (amavisd's
 * requested_by, RELEASE_FROM in the README). Unset: the deployment's DIGEST_FROM and RELEASE_FROM.
 */
export function withGatewayFrom(config: Config, mailFrom: string | null): Config {
  if (!mailFrom) return config;
  const name = config.DIGEST_FROM ? parseFromValue(config.DIGEST_FROM).name : '';
  return { ...config, DIGEST_FROM: name ? `${name} <${mailFrom}>` : mailFrom, RELEASE_FROM: mailFrom };
}

function unreachableHost(id: string, host: string): ReleaseTransport {
  return {
    kind: 'direct',
    release: async () => {
      throw new AppError(
        'release_not_configured',
        `gateway ${id}: the path of amavisd host ${JSON.stringify(host)} is an AM.PDP address, which this runtime cannot reach; name that host's relay`,
      );
    },
  };
}

async function openSecret(keys: Keyring, id: string, column: string, sealed: string | null): Promise<string> {
  try {
    return await open(keys, id, column, sealed ?? '');
  } catch (err) {
    if (err instanceof SecretUnavailable) throw gatewayUnavailable(id, `its ${column.replace('_', ' ')} cannot be opened: ${err.message}`);
    throw err;
  }
}

/** 503 naming the gateway: its database or secrets cannot be used now (also src/api/problem.ts). */
export function gatewayUnavailable(id: string, why: string): AppError {
  return new AppError('gateway_unavailable', `gateway ${id}: ${why}; try again shortly`, { retryAfter: 5, gateway: id });
}
