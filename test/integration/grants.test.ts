// The README's database users, exactly as written there (test/support/readme.ts reads its SQL
// blocks): created on real MariaDB and PostgreSQL, then migrate, serve, a release, sender lists,
// policies, keys and purge run as those users, and the read-only user lists and shows.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { detectSchema, type VariantName } from '../../src/amavis/schema.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { splitStatements } from '../../src/db/migrations.ts';
import { writeMessages, type AmavisMessage } from '../../src/demo/writer.ts';
import { cli, startServe } from '../support/cli.ts';
import { createVariantDatabase, databaseName, dropVariantDatabase, mysqlRoot, pgAdmin } from '../support/databases.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { qeTables, readmeBlock } from '../support/readme.ts';

vi.setConfig({ testTimeout: 180_000, hookTimeout: 120_000 });

const ADMIN_KEY = 'grants-test-admin-key-0123456789';
const DAY = 86400;
type Role = 'migrate' | 'api' | 'readonly';
const PASSWORD: Record<Role, string> = { migrate: 'change-me-migrate', api: 'change-me-api', readonly: 'change-me-ro' };

describe.each(['mysql-iredmail', 'pg-upstream'] as VariantName[])("the README's database users on %s", (variant) => {
  const server = variant.startsWith('mysql') ? 'mysql' : 'postgres';
  const suffix = `${inject('runSuffix')}g`;
  const db = databaseName(variant, { suffix });
  // users are server-wide: this run's own names
  const tag = `qeg${suffix}`;
  const userOf: Record<Role, string> = { migrate: `${tag}_migrate`, api: tag, readonly: `${tag}_ro` };
  let owner: DbHandle; // amavisd's side (it writes the mail)
  let peer: PdpPeer;

  /** The README's block for a role, for this run's database and user names. */
  const statements = (role: Role) =>
    splitStatements(
      readmeBlock(`grants:${server}:${role}`)
        .replace(/\bamavisd\b/g, db)
        .replace(/\bquarantine_edge(_migrate|_ro)?\b/g, (_m, rest: string | undefined) => `${tag}${rest ?? ''}`),
    );
  const grant = async (role: Role) => {
    const s = statements(role);
    if (server === 'mysql') await mysqlRoot(s.map((x) => `${x};`).join('\n'));
    else await pgAdmin(s, db);
  };
  const urlAs = (role: Role) =>
    server === 'mysql'
      ? `mysql://${userOf[role]}:${PASSWORD[role]}@127.0.0.1:3306/${db}`
      : `postgres://${userOf[role]}:${PASSWORD[role]}@127.0.0.1:5432/${db}`;

  beforeAll(async () => {
    const url = await createVariantDatabase(variant, { suffix, migrate: false });
    owner = await openDatabase({ url, runtime: 'node', poolSize: 2 });
    peer = await startPdpPeer();
  });
  afterAll(async () => {
    await peer?.close();
    await owner?.close();
    await dropVariantDatabase(variant, { suffix });
    const users = Object.values(userOf);
    if (server === 'mysql') await mysqlRoot(users.map((u) => `DROP USER IF EXISTS '${u}'@'127.0.0.1';`).join('\n'));
    else await pgAdmin(users.map((u) => `DROP ROLE IF EXISTS ${u}`));
  });

  it("the API user's grants name every qe_* table the migrations create", async () => {
    const tables = qeTables(server, await loadMigrationFiles(server));
    expect(tables.length).toBeGreaterThan(5);
    const api = statements('api').join('\n');
    const ro = statements('readonly').join('\n');
    for (const t of tables) expect(api, t).toMatch(new RegExp(`\\b${t}\\b`));
    for (const t of tables) expect(ro, t).toMatch(new RegExp(`\\b${t}\\b`));
    for (const st of statements('readonly').filter((x) => x.startsWith('GRANT'))) expect(st).toMatch(/^GRANT (SELECT|CONNECT|USAGE) ON /);
  });

  it('migrate, serve, release, sender lists, policies, keys and purge work with exactly those grants', async () => {
    await grant('migrate');
    const mig = await cli(['migrate'], { DATABASE_URL: urlAs('migrate') });
    expect(mig.code, mig.err).toBe(0);
    expect(mig.out).toMatch(new RegExp(`amavisd schema: ${variant}`));
    expect(mig.out).toMatch(/applied: 0001_init/);
    await grant('api');
    await grant('readonly');

    const variantInfo = await detectSchema(owner.db, owner.dialect);
    const now = Math.floor(Date.now() / 1000);
    const msg = (timeNum: number, to: string, subject: string): AmavisMessage => ({
      timeNum,
      content: 'S',
      sender: 'sender@grants.example',
      subject,
      recipients: [{ address: to }],
      raw: `Subject: ${subject}\n\nbody\n`,
    });
    const [toRelease, toDelete] = await writeMessages(owner.db, variantInfo, [
      msg(now - 60, 'alice@grants.example', 'release me'),
      msg(now - 60, 'bob@grants.example', 'delete me'),
      msg(now - 40 * DAY, 'carol@grants.example', 'expired'),
    ]);
    const id = (w: { partitionTag: number; mailId: string }) => `${w.partitionTag}.${w.mailId}`;
    await sql`INSERT INTO policy (policy_name) VALUES ('grants-test')`.execute(owner.db); // as amavisd's admin would

    const api = await startServe({ DATABASE_URL: urlAs('api'), ADMIN_API_KEY: ADMIN_KEY, AMAVISD_PDP: peer.hostPort });
    try {
      // the in-process purge is off unless PURGE_SCHEDULE says when
      expect(api.output()).toMatch(/"purge":"off \(set PURGE_SCHEDULE\)"/);
      const call = (path: string, init: RequestInit = {}) =>
        fetch(`${api.base}${path}`, {
          ...init,
          headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
        });
      const ready = await call('/readyz');
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', lookup_tables: { status: 'present' } });

      const list = await call('/v1/quarantine?limit=200');
      expect(list.status).toBe(200);
      expect(((await list.json()) as { items: Array<{ id: string }> }).items.map((i) => i.id)).toEqual(
        expect.arrayContaining([id(toRelease!), id(toDelete!)]),
      );
      expect((await call(`/v1/quarantine/${id(toRelease!)}`)).status).toBe(200);

      const released = await call(`/v1/quarantine/${id(toRelease!)}/release`, {
        method: 'POST',
        body: JSON.stringify({ allow_sender: true }),
      });
      expect(released.status, await released.clone().text()).toBe(200);
      expect(peer.requests().length).toBe(1);

      const added = await call('/v1/sender-lists', {
        method: 'POST',
        body: JSON.stringify({ recipient: 'bob@grants.example', sender: '@spam.example', list: 'block' }),
      });
      expect(added.status, await added.clone().text()).toBe(201);
      const entries = await call('/v1/sender-lists?recipient=alice@grants.example');
      expect(((await entries.json()) as { items: Array<{ sender: string; list: string }> }).items).toEqual([
        expect.objectContaining({ sender: 'sender@grants.example', list: 'allow' }),
      ]);
      const removed = await call('/v1/sender-lists?recipient=bob@grants.example&sender=@spam.example', { method: 'DELETE' });
      expect(await removed.json()).toEqual({ removed: true });

      const policies = await call('/v1/policies');
      expect(policies.status).toBe(200);
      const policy = ((await policies.json()) as { items: Array<{ id: number; name: string }> }).items.find(
        (p) => p.name === 'grants-test',
      )!;
      const patched = await call(`/v1/policies/${policy.id}`, {
        method: 'PATCH',
        body: JSON.stringify({ levels: { spam_kill_level: 9 } }),
      });
      expect(patched.status, await patched.clone().text()).toBe(200);
      const assign = await call('/v1/policies/assignments/@grants.example', {
        method: 'PUT',
        body: JSON.stringify({ policy_id: policy.id }),
      });
      expect(assign.status, await assign.clone().text()).toBe(200);

      const deleted = await call(`/v1/quarantine/${id(toDelete!)}`, { method: 'DELETE' });
      expect(deleted.status, await deleted.clone().text()).toBe(200);

      const key = await call('/v1/keys', {
        method: 'POST',
        body: JSON.stringify({ name: 'grants', role: 'user', mailbox: 'alice@grants.example' }),
      });
      expect(key.status, await key.clone().text()).toBe(201);
      expect((await call('/v1/audit?limit=10')).status).toBe(200);
    } finally {
      await api.stop();
    }

    const keys = await cli(['keys', 'create', '--name', 'cli', '--role', 'domain_admin', '--domain', 'grants.example'], {
      DATABASE_URL: urlAs('api'),
    });
    expect(keys.code, keys.err).toBe(0);
    const purged = await cli(['purge'], { DATABASE_URL: urlAs('api') });
    expect(purged.code, purged.err).toBe(0);
    expect(purged.out).toMatch(/removed 1 expired/);
    const left = await sql<{ n: number | string }>`SELECT count(*) AS n FROM msgs WHERE time_num < ${now - 30 * DAY}`.execute(owner.db);
    expect(Number(left.rows[0]!.n)).toBe(0);

    // read-only: list and show, nothing else
    const ro = await startServe({ DATABASE_URL: urlAs('readonly'), ADMIN_API_KEY: ADMIN_KEY, DATABASE_ACCESS: 'read-only' });
    try {
      const get = (path: string) => fetch(`${ro.base}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      const readyRo = await get('/readyz');
      expect(readyRo.status).toBe(200);
      expect(await readyRo.json()).toMatchObject({ status: 'ready', access: 'read-only' });
      // a write is refused by the database: 503 with its code, nothing changed, and the instance stays ready
      const write = await fetch(`${ro.base}/v1/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'ro-write', role: 'user', mailbox: 'carol@grants.example' }),
      });
      expect(write.status).toBe(503);
      expect(await write.json()).toMatchObject({ code: 'database_permission_denied' });
      expect((await get('/readyz')).status).toBe(200);
      const keys = (await (await get('/v1/keys')).json()) as { items: Array<{ name: string }> };
      expect(keys.items.map((k) => k.name)).toContain('grants');
      expect(keys.items.map((k) => k.name)).not.toContain('ro-write');
      const items = ((await (await get('/v1/quarantine?status=all&limit=200')).json()) as { items: Array<{ id: string }> }).items.map(
        (i) => i.id,
      );
      expect(items).toEqual(expect.arrayContaining([id(toRelease!), id(toDelete!)]));
      expect((await get(`/v1/quarantine/${id(toRelease!)}`)).status).toBe(200);
      expect((await get(`/v1/quarantine/${id(toRelease!)}/raw`)).status).toBe(200);
    } finally {
      await ro.stop();
    }
  });
});
