/**
 * The gateway registry (issue 20, item 2): the mail gateways this deployment is to serve, kept in
 * the state database (qe_gateways, qe_gateway_domains; migration 0019). Admins only: to anyone
 * else a gateway does not exist (404, as keys). Secrets are sealed before they are stored
 * (src/gateways/secrets.ts) and never returned: a view says whether one is set, and under which
 * key. Nothing routes by gateway yet; /readyz reports each one (src/gateways/probe.ts).
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import { isDeploymentAdmin, type Identity } from '../auth/identity.ts';
import { keyIsLive } from '../auth/keys.ts';
import { recordAudit } from '../audit/audit.ts';
import { isUniqueViolation } from '../db/errors.ts';
import type { Database, QeGatewaysTable } from '../db/types.ts';
import type { SqlDialect } from '../db/connect.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { GATEWAYS_MAX, type CreateGateway, type UpdateGateway } from './input.ts';
import { keyringFromConfig, open, reseal, seal, sealedKeyId, SecretUnavailable, type Keyring } from './secrets.ts';

type Row = Selectable<QeGatewaysTable>;

export interface GatewayView {
  id: string;
  name: string;
  domains: string[];
  database: { kind: 'hyperdrive'; binding: string } | { kind: 'url'; url_set: boolean; key_id: string | null };
  release: { kind: 'pdp'; address: string } | { kind: 'relay'; url: string; secret_set: boolean; key_id: string | null } | null;
  /** msgs.host to that host's release path (README "Several amavisd hosts on one database"); null: none */
  release_hosts: Record<string, string> | null;
  mail_from: string | null;
  created_at: string;
  created_by: string;
  updated_at: string;
}

const iso = (s: number | string) => new Date(Number(s) * 1000).toISOString();

export function gatewayView(row: Row, domains: string[]): GatewayView {
  return {
    id: row.id,
    name: row.name,
    domains,
    database:
      row.database_kind === 'hyperdrive'
        ? { kind: 'hyperdrive', binding: row.hyperdrive_binding ?? '' }
        : {
            kind: 'url',
            url_set: row.database_url_sealed !== null,
            key_id: row.database_url_sealed ? sealedKeyId(row.database_url_sealed) : null,
          },
    release:
      row.release_kind === 'pdp'
        ? { kind: 'pdp', address: row.pdp_address ?? '' }
        : row.release_kind === 'relay'
          ? {
              kind: 'relay',
              url: row.relay_url ?? '',
              secret_set: row.relay_secret_sealed !== null,
              key_id: row.relay_secret_sealed ? sealedKeyId(row.relay_secret_sealed) : null,
            }
          : null,
    release_hosts: row.release_hosts ? (JSON.parse(row.release_hosts) as Record<string, string>) : null,
    mail_from: row.mail_from,
    created_at: iso(row.created_at),
    created_by: row.created_by,
    updated_at: iso(row.updated_at),
  };
}

function requireAdmin(who: Identity) {
  // The registry is an admin matter; to anyone else it does not exist (as keys and their routes).
  // (a gateway admin, too: its gateways' settings are the deployment admins' to change)
  if (!isDeploymentAdmin(who)) throw new AppError('not_found', 'not found');
}

const notFound = () => new AppError('not_found', 'no gateway with this id');

async function domainsOf(db: Kysely<Database>, ids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom('qe_gateway_domains')
    .select(['gateway_id', 'domain'])
    .where('gateway_id', 'in', ids)
    .orderBy('domain')
    .execute();
  for (const r of rows) out.get(r.gateway_id)?.push(r.domain);
  return out;
}

export async function listGateways(deps: Deps, who: Identity): Promise<GatewayView[]> {
  requireAdmin(who);
  const rows = await deps.state.selectFrom('qe_gateways').selectAll().orderBy('id').execute();
  const domains = await domainsOf(
    deps.state,
    rows.map((r) => r.id),
  );
  return rows.map((r) => gatewayView(r, domains.get(r.id) ?? []));
}

export async function getGateway(deps: Deps, who: Identity, id: string): Promise<GatewayView> {
  requireAdmin(who);
  const row = await deps.state.selectFrom('qe_gateways').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound();
  return gatewayView(row, (await domainsOf(deps.state, [id])).get(id) ?? []);
}

/** The columns of a database and a release path, sealing what is secret (and only when given). */
async function databaseColumns(ring: Keyring, id: string, d: CreateGateway['database']) {
  return d.url !== undefined
    ? { database_kind: 'url', hyperdrive_binding: null, database_url_sealed: await seal(ring, id, 'database_url', d.url, 'database.url') }
    : { database_kind: 'hyperdrive', hyperdrive_binding: d.hyperdrive!, database_url_sealed: null };
}

async function releaseColumns(ring: Keyring, id: string, r: CreateGateway['release'], keptSecret: string | null) {
  if (r === null) return { release_kind: 'none', pdp_address: null, relay_url: null, relay_secret_sealed: null };
  if (r.pdp !== undefined) return { release_kind: 'pdp', pdp_address: r.pdp, relay_url: null, relay_secret_sealed: null };
  const secret = r.relay_secret !== undefined ? await seal(ring, id, 'relay_secret', r.relay_secret, 'release.relay_secret') : keptSecret;
  if (secret === null)
    throw new AppError('invalid_field', 'release.relay_secret: required with relay_url', { field: 'release.relay_secret' });
  return { release_kind: 'relay', pdp_address: null, relay_url: r.relay_url!, relay_secret_sealed: secret };
}

/** A domain another gateway serves: 409 naming it (the primary key would refuse it anyway). */
async function claimDomains(trx: Kysely<Database>, id: string, domains: string[]): Promise<void> {
  const unique = [...new Set(domains)];
  const taken = await trx
    .selectFrom('qe_gateway_domains')
    .select(['domain', 'gateway_id'])
    .where('domain', 'in', unique)
    .where('gateway_id', '<>', id)
    .orderBy('domain')
    .executeTakeFirst();
  if (taken) {
    throw new AppError('conflict', `domains: ${taken.domain} is served by gateway ${taken.gateway_id}`, {
      field: 'domains',
      domain: taken.domain,
      gateway: taken.gateway_id,
    });
  }
  await trx.deleteFrom('qe_gateway_domains').where('gateway_id', '=', id).execute();
  await trx
    .insertInto('qe_gateway_domains')
    .values(unique.map((domain) => ({ domain, gateway_id: id })))
    .execute();
}

/** What an audit row says of a change: the fields given, secrets only as "set". */
function auditFields(input: Partial<CreateGateway>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...input };
  if (input.database) out.database = input.database.url !== undefined ? { url: 'set' } : { hyperdrive: input.database.hyperdrive };
  if (input.release?.relay_secret !== undefined) out.release = { ...input.release, relay_secret: 'set' };
  return out;
}

/** A race (two creates of one id or one domain) that the pre-checks did not see: 409, not a 500. */
function conflictOnRace(err: unknown): never {
  if (isUniqueViolation(err)) throw new AppError('conflict', 'another change to the registry took this id or a domain just now; retry');
  throw err;
}

/** The migration that made the registry: its row in qe_schema_migrations is the creates' lock on MariaDB. */
const REGISTRY_MIGRATION = 19;

/**
 * How many gateways are registered, counted so that the cap holds under concurrent creates: the
 * count and the insert after it are one step. Held to the end of the transaction, and only while a
 * gateway is created. PostgreSQL: a table lock that conflicts with itself and with any insert not
 * yet committed (a plain count would not see that row). MariaDB: creates queue on one row elsewhere
 * first (two locking reads of qe_gateways at once deadlock as soon as either inserts, InnoDB
 * counting the other's waiting gap lock), then a locking read of every gateway, which waits for an
 * insert not yet committed instead of not seeing it.
 */
async function countLocked(trx: Kysely<Database>, dialect: SqlDialect): Promise<number> {
  if (dialect === 'postgres') {
    await sql`LOCK TABLE qe_gateways IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
    const count = await trx
      .selectFrom('qe_gateways')
      .select((e) => e.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(count.n);
  }
  await trx.selectFrom('qe_schema_migrations').select('version').where('version', '=', REGISTRY_MIGRATION).forUpdate().execute();
  return (await trx.selectFrom('qe_gateways').select('id').forUpdate().execute()).length;
}

export async function createGateway(deps: Deps, who: Identity, input: CreateGateway): Promise<GatewayView> {
  requireAdmin(who);
  const ring = await keyringFromConfig(deps.config);
  const now = Math.floor(deps.clock.now() / 1000);
  const row: Row = {
    id: input.id,
    name: input.name,
    ...(await databaseColumns(ring, input.id, input.database)),
    ...(await releaseColumns(ring, input.id, input.release, null)),
    release_hosts: hostsColumn(input.release_hosts),
    mail_from: input.mail_from,
    created_at: now,
    created_by: who.actor.slice(0, 512),
    updated_at: now,
  };
  relayHostsNeedSecret(row);
  await deps.state
    .transaction()
    .execute(async (trx) => {
      if (await trx.selectFrom('qe_gateways').select('id').where('id', '=', input.id).executeTakeFirst())
        throw new AppError('conflict', `id: a gateway ${input.id} exists already`, { field: 'id' });
      if (await trx.selectFrom('qe_gateway_tombstones').select('id').where('id', '=', input.id).executeTakeFirst())
        throw new AppError('conflict', `id: ${input.id} was a removed gateway's; an id is never used twice (its records still name it)`, {
          field: 'id',
        });
      if ((await countLocked(trx, deps.stateDialect)) >= GATEWAYS_MAX)
        throw new AppError('conflict', `at most ${GATEWAYS_MAX} gateways may be registered`);
      await trx.insertInto('qe_gateways').values(row).execute();
      await claimDomains(trx, input.id, input.domains);
      await recordAudit(trx, deps.clock, who, { action: 'gateway.create', result: 'ok', detail: JSON.stringify(auditFields(input)) });
    })
    .catch(conflictOnRace);
  return gatewayView(row, [...new Set(input.domains)].sort());
}

/** The columns a PATCH may change, compared (sealed values by their stored text). */
const hostsColumn = (hosts: Record<string, string> | null) => (hosts && Object.keys(hosts).length ? JSON.stringify(hosts) : null);

/** A host's relay is signed with the gateway's relay secret: a relay host needs the gateway's release to be a relay. */
function relayHostsNeedSecret(row: Row): void {
  const hosts = row.release_hosts ? (JSON.parse(row.release_hosts) as Record<string, string>) : {};
  const relayed = Object.keys(hosts).find((h) => /^https?:/i.test(hosts[h]!));
  if (relayed !== undefined && (row.release_kind !== 'relay' || row.relay_secret_sealed === null)) {
    throw new AppError(
      'invalid_field',
      `release_hosts.${relayed}: a host's relay is signed with the gateway's relay secret: give release.relay_url and release.relay_secret`,
      { field: 'release_hosts' },
    );
  }
}

function sameColumns(a: Row, b: Row): boolean {
  const keys = Object.keys(a).filter((k) => !['id', 'created_at', 'created_by', 'updated_at'].includes(k)) as Array<keyof Row>;
  return keys.every((k) => (a[k] ?? null) === (b[k] ?? null));
}

/** `next` unless it seals the same value as `stored` (then `stored`); a value that does not open counts as changed. */
async function keepIfSame(
  ring: Keyring,
  id: string,
  column: 'database_url' | 'relay_secret',
  stored: string | null,
  next: string | null,
): Promise<string | null> {
  if (stored === null || next === null || stored === next) return next;
  try {
    return (await open(ring, id, column, stored)) === (await open(ring, id, column, next)) ? stored : next;
  } catch (err) {
    if (err instanceof SecretUnavailable) return next;
    throw err;
  }
}

export async function updateGateway(deps: Deps, who: Identity, id: string, input: UpdateGateway): Promise<GatewayView> {
  requireAdmin(who);
  const ring = await keyringFromConfig(deps.config);
  const view = await deps.state
    .transaction()
    .execute(async (trx) => {
      const row = await trx.selectFrom('qe_gateways').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
      if (!row) throw notFound();
      const kept = row.release_kind === 'relay' ? row.relay_secret_sealed : null;
      const next: Row = {
        ...row,
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(input.database !== undefined ? await databaseColumns(ring, id, input.database) : {}),
        ...(input.release !== undefined ? await releaseColumns(ring, id, input.release, kept) : {}),
        ...(input.release_hosts !== undefined ? { release_hosts: hostsColumn(input.release_hosts) } : {}),
        ...(input.mail_from !== undefined ? { mail_from: input.mail_from } : {}),
      };
      relayHostsNeedSecret(next);
      // a secret sent again as it is stored: keep the stored seal (each seal differs, its value not)
      next.database_url_sealed = await keepIfSame(ring, id, 'database_url', row.database_url_sealed, next.database_url_sealed);
      next.relay_secret_sealed = await keepIfSame(ring, id, 'relay_secret', row.relay_secret_sealed, next.relay_secret_sealed);
      const current = (await domainsOf(trx, [id])).get(id) ?? [];
      const domains = input.domains === undefined ? current : [...new Set(input.domains)].sort();
      // nothing changed: the stored view as it is, no updated_at, no audit row (as a repeated action)
      if (sameColumns(row, next) && domains.join('\n') === current.join('\n')) return gatewayView(row, current);
      next.updated_at = Math.floor(deps.clock.now() / 1000);
      const { id: _id, created_at: _c, created_by: _b, ...changes } = next;
      await trx.updateTable('qe_gateways').set(changes).where('id', '=', id).execute();
      if (input.domains !== undefined) await claimDomains(trx, id, input.domains);
      await recordAudit(trx, deps.clock, who, {
        action: 'gateway.update',
        result: 'ok',
        detail: JSON.stringify({ id, ...auditFields(input) }),
      });
      return gatewayView(next, (await domainsOf(trx, [id])).get(id) ?? []);
    })
    .catch(conflictOnRace);
  return view;
}

export async function deleteGateway(deps: Deps, who: Identity, id: string): Promise<void> {
  requireAdmin(who);
  await deps.state.transaction().execute(async (trx) => {
    await refuseWhileKeysBelong(trx, deps, id);
    const res = await trx.deleteFrom('qe_gateways').where('id', '=', id).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw notFound();
    const domains = await trx.deleteFrom('qe_gateway_domains').where('gateway_id', '=', id).executeTakeFirst();
    // its id is never registered again: its audit, policies, requests, webhooks and digest records
    // name it, and would be another customer's to read (migration 0026)
    await trx
      .insertInto('qe_gateway_tombstones')
      .values({ id, deleted_at: Math.floor(deps.clock.now() / 1000), deleted_by: who.actor.slice(0, 512) })
      .execute();
    // what a stopped process left unsettled in its database can no longer be settled there: it is
    // dropped (named in the audit row), never redone in whatever database the id reaches later
    const intents = await trx.selectFrom('qe_cross_writes').select(['id', 'kind', 'mail_id']).where('gateway_id', '=', id).execute();
    await trx.deleteFrom('qe_cross_writes').where('gateway_id', '=', id).execute();
    const attempts = await trx.deleteFrom('qe_release_attempts').where('gateway_id', '=', id).executeTakeFirst();
    await recordAudit(trx, deps.clock, who, {
      action: 'gateway.delete',
      result: 'ok',
      detail: JSON.stringify({
        id,
        domains_released: Number(domains.numDeletedRows),
        unsettled_dropped: intents.map((i) => ({ id: i.id, kind: i.kind, mail_id: i.mail_id })),
        release_attempts_dropped: Number(attempts.numDeletedRows),
      }),
    });
  });
}

/**
 * A gateway with live keys is not removed (409 naming them): they would stay bound to its id, and a
 * gateway registered later under the same id (another mail server) would be theirs to read and act
 * on. Revoking them first is the admin's deliberate step.
 */
async function refuseWhileKeysBelong(trx: Deps['state'], deps: Deps, id: string): Promise<void> {
  const now = Math.floor(deps.clock.now() / 1000);
  // qe_api_keys.gateways is a JSON list of slugs (no LIKE wildcards in them); the list is parsed to be sure
  const rows = await trx
    .selectFrom('qe_api_keys')
    .select(['id', 'gateways', 'revoked_at', 'expires_at'])
    .where('gateways', 'like', `%"${id}"%`)
    .execute();
  const bound = rows.filter((r) => keyIsLive(r, now) && (JSON.parse(r.gateways ?? '[]') as string[]).includes(id)).map((r) => r.id);
  if (bound.length === 0) return;
  throw new AppError(
    'conflict',
    `gateway ${id}: ${bound.length} live API key(s) belong to it (${bound.slice(0, 10).join(', ')}${bound.length > 10 ? ', ...' : ''}); revoke them first (DELETE /v1/keys/{id})`,
    { field: 'id' },
  );
}

/**
 * Seal every stored secret again under the current GATEWAY_SECRETS_KEY (after a rotation; the old
 * key stays in GATEWAY_SECRETS_PREVIOUS_KEYS until this has run). One transaction per gateway, with
 * its audit row; a value that does not open stops the run naming its gateway.
 */
export async function rekeyGateways(deps: Deps, who: Identity): Promise<{ resealed: string[]; current: string[] }> {
  requireAdmin(who);
  const ring = await keyringFromConfig(deps.config);
  if (!ring.current)
    throw new AppError('misconfigured', 'rekey needs GATEWAY_SECRETS_KEY (the new key)', { setting: 'GATEWAY_SECRETS_KEY' });
  const ids = await deps.state.selectFrom('qe_gateways').select('id').orderBy('id').execute();
  const resealed: string[] = [];
  const current: string[] = [];
  for (const { id } of ids) {
    const changed = await deps.state.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('qe_gateways').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
      if (!row) return false;
      let url: string | null;
      let secret: string | null;
      try {
        url = row.database_url_sealed ? await reseal(ring, id, 'database_url', row.database_url_sealed) : null;
        secret = row.relay_secret_sealed ? await reseal(ring, id, 'relay_secret', row.relay_secret_sealed) : null;
      } catch (err) {
        if (err instanceof SecretUnavailable) throw new AppError('misconfigured', `gateway ${id}: ${err.message}`, { gateway: id });
        throw err;
      }
      if (url === null && secret === null) return false;
      await trx
        .updateTable('qe_gateways')
        .set({ ...(url ? { database_url_sealed: url } : {}), ...(secret ? { relay_secret_sealed: secret } : {}) })
        .where('id', '=', id)
        .execute();
      await recordAudit(trx, deps.clock, who, {
        action: 'gateway.rekey',
        result: 'ok',
        detail: JSON.stringify({ id, key_id: ring.current!.id }),
      });
      return true;
    });
    (changed ? resealed : current).push(id);
  }
  return { resealed, current };
}
