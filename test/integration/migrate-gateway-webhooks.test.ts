// Migration 0024 (webhook subscriptions and release requests per gateway) over rows made before it,
// on MariaDB and PostgreSQL: a domain admin's subscription and a gateway admin's become the
// deployment's own database's, a deployment admin's keeps every gateway; requests are the
// deployment's own; the copy key now includes the gateway. Run again (as after a failure), it
// changes nothing.
import { sql } from 'kysely';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { createVariantDatabase, dropVariantDatabase } from '../support/databases.ts';

const V = 24;

describe.each(['mysql-upstream', 'pg-upstream'] as const)('migration 0024 on %s', (variant) => {
  const opts = { suffix: `${inject('runSuffix')}m24`.slice(0, 16) };
  let h: DbHandle | undefined;
  afterAll(async () => {
    await h?.close();
    await dropVariantDatabase(variant, opts);
  });

  it('gives older subscriptions and requests their gateway, keys a copy by gateway, and runs again without change', async () => {
    const url = await createVariantDatabase(variant, { ...opts, migrate: false });
    h = await openDatabase({ url, runtime: 'node', poolSize: 1 });
    const files = await loadMigrationFiles(h.dialect);
    expect(files.map((f) => f.version)).toContain(V);
    await migrate(
      h.db,
      h.dialect,
      files.filter((f) => f.version < V),
      () => Date.now(),
    );
    const now = Math.floor(Date.now() / 1000);
    const key = (id: string, role: string, gateways: string | null) => ({
      id,
      name: id,
      role,
      key_hash: `hash-${id}`,
      key_prefix: id.slice(0, 8),
      domains: role === 'domain_admin' ? '["d.example"]' : null,
      mailbox: null,
      gateways,
      created_at: now,
      created_by: 'test',
    });
    await h.db
      .insertInto('qe_api_keys')
      .values([key('key_dep', 'admin', null), key('key_gwa', 'admin', '[""]'), key('key_dom', 'domain_admin', null)] as never)
      .execute();
    const hook = (id: string, keyId: string, domains: string | null) => ({
      id,
      url: 'https://hooks.example/x',
      events: '["quarantine.released"]',
      description: null,
      secret: 'whsec_x',
      domains,
      created_by: `key:${keyId}`,
      created_at: now,
      key_id: keyId,
    });
    await h.db
      .insertInto('qe_webhooks')
      .values([hook('wh_dep', 'key_dep', null), hook('wh_gwa', 'key_gwa', null), hook('wh_dom', 'key_dom', '["d.example"]')] as never)
      .execute();
    const request = (id: string) => ({
      id,
      partition_tag: 0,
      mail_id: 'AbCdEfGhIjKl',
      recipient: 'alice@d.example',
      domain: 'd.example',
      requested_by: 'key:u',
      note: null,
      status: 'pending',
      created_at: now,
    });
    await h.db
      .insertInto('qe_release_requests')
      .values(request('rr_old') as never)
      .execute();

    expect(await migrate(h.db, h.dialect, files, () => Date.now())).toEqual(files.filter((f) => f.version >= V).map((f) => f.name));
    const gateways = async () =>
      Object.fromEntries(
        (await h!.db.selectFrom('qe_webhooks').select(['id', 'gateway_id']).orderBy('id').execute()).map((r) => [r.id, r.gateway_id]),
      );
    expect(await gateways()).toEqual({ wh_dep: null, wh_dom: '', wh_gwa: '' });
    expect(await h.db.selectFrom('qe_release_requests').select(['id', 'gateway_id']).execute()).toEqual([{ id: 'rr_old', gateway_id: '' }]);

    // the same copy in another gateway is another request; twice in one gateway is refused
    await h.db
      .insertInto('qe_release_requests')
      .values({ ...request('rr_gw'), gateway_id: 'gw-b' } as never)
      .execute();
    await expect(
      h.db
        .insertInto('qe_release_requests')
        .values({ ...request('rr_dup'), gateway_id: 'gw-b' } as never)
        .execute(),
    ).rejects.toThrow();

    // run again, as after a failure part way: every statement is done already or does the same
    await sql`DELETE FROM qe_schema_migrations WHERE version = ${V}`.execute(h.db);
    await h.db.updateTable('qe_webhooks').set({ gateway_id: 'gw-b' }).where('id', '=', 'wh_gwa').execute();
    expect(await migrate(h.db, h.dialect, files, () => Date.now())).toEqual(['0024_gateway_webhooks']);
    // a subscription given its gateway since keeps it
    expect(await gateways()).toEqual({ wh_dep: null, wh_dom: '', wh_gwa: 'gw-b' });
    expect(await h.db.selectFrom('qe_release_requests').select('id').orderBy('id').execute()).toEqual([{ id: 'rr_gw' }, { id: 'rr_old' }]);
  });
});
