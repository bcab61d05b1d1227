// An amavisd that quarantines to SQL but keeps no lookup tables (users, mailaddr, wblist, policy):
// listing and release work; sender lists, policies and allow/block answer 501 naming the missing
// tables and @lookup_sql_dsn, change nothing, and /readyz and the pages say so.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { detectSchema, type VariantName } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import { writeMessages } from '../../src/demo/writer.ts';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { createVariantDatabase, dropVariantDatabase } from '../support/databases.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { keySession } from '../support/ui-client.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 120_000 });

const ADMIN_KEY = 'lookup-test-admin-key-0123456789';
const LINK_SECRET = 'lookup-test-link-secret-0123456789abcdef';
const quiet = { info() {}, warn() {}, error() {} };

describe.each(['mysql-iredmail', 'pg-upstream'] as VariantName[])('a quarantine-only amavisd on %s', (variant) => {
  const suffix = `${inject('runSuffix')}l`;
  let handle: DbHandle;
  let peer: PdpPeer;
  let app: ReturnType<typeof createApp>;
  let id: string;
  const call = (path: string, init: RequestInit = {}) =>
    Promise.resolve(
      app.request(path, {
        ...init,
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
      }),
    );

  beforeAll(async () => {
    const url = await createVariantDatabase(variant, { suffix, migrate: false });
    handle = await openDatabase({ url, runtime: 'node', poolSize: 2 });
    // amavisd's quarantine tables only: @storage_sql_dsn without @lookup_sql_dsn
    for (const t of ['wblist', 'outbound_wblist', 'users', 'mailaddr', 'policy']) {
      await sql.raw(`DROP TABLE IF EXISTS ${t}${variant.startsWith('pg') ? ' CASCADE' : ''}`).execute(handle.db);
    }
    await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
    const v = await detectSchema(handle.db, handle.dialect);
    const [w] = await writeMessages(handle.db, v, [
      {
        timeNum: Math.floor(Date.now() / 1000) - 60,
        content: 'S',
        sender: 'someone@lookup.example',
        subject: 'hello',
        recipients: [{ address: 'alice@lookup.example' }],
        raw: 'Subject: hello\n\nbody\n',
      },
    ]);
    id = `${w!.partitionTag}.${w!.mailId}`;
    peer = await startPdpPeer();
    const config = parseConfig({ DATABASE_URL: url, ADMIN_API_KEY: ADMIN_KEY, LINK_SECRET, PUBLIC_URL: 'https://q.lookup.example' });
    app = createApp({ config, database: sharedProvider(handle, v), log: quiet, release: directTransport(peer.hostPort) });
  });
  afterAll(async () => {
    await peer?.close();
    await handle?.close();
    await dropVariantDatabase(variant, { suffix });
  });

  it("the digest offers no 'always allow sender' (there is no sender list to write), only release and delete", async () => {
    const res = await call('/v1/digests/preview?recipient=alice@lookup.example&all_time=true');
    expect(res.status, await res.clone().text()).toBe(200);
    const html = await res.text();
    expect(html).toContain('>Release<');
    expect(html).toContain('>Delete<');
    expect(html).not.toMatch(/always allow/i);
  });

  const expectLookupProblem = async (res: Response) => {
    expect(res.status).toBe(501);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 501, code: 'lookup_tables_missing', missing_tables: ['users', 'mailaddr', 'wblist', 'policy'] });
    expect(body.detail).toMatch(/users, mailaddr, wblist, policy/);
    expect(body.detail).toMatch(/@lookup_sql_dsn/);
  };

  it('/readyz is ready and names the missing lookup tables', async () => {
    const res = await call('/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: 'ready',
      lookup_tables: { status: 'missing', missing: ['users', 'mailaddr', 'wblist', 'policy'] },
    });
  });

  it('sender lists and policies answer 501 naming the tables and @lookup_sql_dsn; listing works', async () => {
    expect((await call('/v1/quarantine')).status).toBe(200);
    await expectLookupProblem(await call('/v1/sender-lists'));
    await expectLookupProblem(
      await call('/v1/sender-lists', {
        method: 'POST',
        body: JSON.stringify({ recipient: 'alice@lookup.example', sender: '@spam.example', list: 'block' }),
      }),
    );
    await expectLookupProblem(await call('/v1/sender-lists?recipient=alice@lookup.example&sender=@spam.example', { method: 'DELETE' }));
    await expectLookupProblem(await call('/v1/policies'));
    await expectLookupProblem(await call('/v1/policies/1'));
    await expectLookupProblem(await call('/v1/policies/1', { method: 'PATCH', body: JSON.stringify({ levels: { spam_kill_level: 9 } }) }));
    await expectLookupProblem(
      await call('/v1/policies/assignments/alice@lookup.example', { method: 'PUT', body: JSON.stringify({ policy_id: 1 }) }),
    );
  });

  it('the pages say why there are no sender lists and offer no allow/block', async () => {
    const b = await keySession(app, ADMIN_KEY);
    const senders = await b.page('/ui/senders');
    expect(senders.res.status).toBe(501);
    expect(senders.html).toMatch(/lookup tables are missing.*users, mailaddr, wblist, policy/s);
    expect(senders.html).toContain('@lookup_sql_dsn');
    const list = await b.page('/ui/quarantine?status=all');
    expect(list.res.status).toBe(200);
    expect(list.html).not.toContain('value="release_allow"');
    expect(list.html).toMatch(/Allow and block are unavailable/);
    const one = await b.page(`/ui/quarantine/${id}`);
    expect(one.html).toContain('Release</button>');
    expect(one.html).not.toContain('name="allow_sender"');
    expect(one.html).toMatch(/Allow and block are unavailable/);
  });
  it('a release with allow_sender is refused before amavisd is asked; a plain release works', async () => {
    await expectLookupProblem(await call(`/v1/quarantine/${id}/release`, { method: 'POST', body: JSON.stringify({ allow_sender: true }) }));
    await expectLookupProblem(await call(`/v1/quarantine/${id}?block_sender=true`, { method: 'DELETE' }));
    expect(peer.requests()).toHaveLength(0);
    const plain = await call(`/v1/quarantine/${id}/release`, { method: 'POST', body: '{}' });
    expect(plain.status, await plain.clone().text()).toBe(200);
    expect(peer.requests()).toHaveLength(1);
  });
});
