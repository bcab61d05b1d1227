import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bind } from '../../src/amavis/schema.ts';
import { VARIANTS } from '../support/databases.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';

describe.each(VARIANTS)('policies on %s', (variantName) => {
  let t: TestApp;
  let dA: string, dB: string;
  let adminA: string, userAlice: string;
  let pA: number, pShared: number;
  const names: string[] = [];

  const send = (method: string, path: string, body?: unknown, key = ADMIN_KEY) =>
    t.get(
      path,
      key,
      body === undefined ? { method } : { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } },
    );
  const newPolicy = async (name: string, cols = "'N', 'N'") => {
    names.push(name);
    await sql.raw(`INSERT INTO policy (policy_name, spam_lover, bypass_spam_checks) VALUES ('${name}', ${cols})`).execute(t.handle.db);
    return Number((await sql<{ id: number }>`SELECT id FROM policy WHERE policy_name = ${name}`.execute(t.handle.db)).rows[0]!.id);
  };
  const policyRow = async (id: number) =>
    (await sql<Record<string, any>>`SELECT * FROM policy WHERE id = ${id}`.execute(t.handle.db)).rows[0]!;

  beforeAll(async () => {
    t = await testApp(variantName);
    [dA, dB] = uniqueDomains(2) as [string, string];
    adminA = await t.key('domain_admin', { domains: [dA] });
    userAlice = await t.key('user', { mailbox: `alice@${dA}` });
    const tag = dA.slice(3, 11);
    pA = await newPolicy(`pa-${tag}`);
    pShared = await newPolicy(`ps-${tag}`);
    // pA: only dA's rows use it; pShared: dA and dB
    expect((await send('PUT', `/v1/policies/assignments/@${dA}`, { policy_id: pA })).status).toBe(200);
    expect((await send('PUT', `/v1/policies/assignments/bob@${dA}`, { policy_id: pShared })).status).toBe(200);
    expect((await send('PUT', `/v1/policies/assignments/@${dB}`, { policy_id: pShared })).status).toBe(200);
  });
  afterAll(async () => {
    if (!t) return;
    const v = t.variant;
    const users = [`@${dA}`, `bob@${dA}`, `carol@${dA}`, `@${dB}`].map((s) => bind(v, 'users.email', s));
    await sql`DELETE FROM users WHERE email IN (${sql.join(users)})`.execute(t.handle.db);
    if (names.length) await sql`DELETE FROM policy WHERE policy_name IN (${sql.join(names)})`.execute(t.handle.db);
    await t.close();
  });

  it('reads the friendly shape and writes users rows with the right priority', async () => {
    const res = await send('GET', `/v1/policies/${pA}`);
    expect(res.status).toBe(200);
    const p = (await res.json()) as any;
    expect(p).toMatchObject({ id: pA, global: false, quarantine: { spam: true, virus: null, banned: null, bad_header: null } });
    expect(p.levels).toEqual({ spam_tag_level: null, spam_tag2_level: null, spam_kill_level: null, spam_quarantine_cutoff_level: null });
    expect(Object.keys(p.raw)).toContain('spam_lover');
    const { rows } = await sql<{ priority: number; policy_id: number }>`SELECT priority, policy_id FROM users
      WHERE email IN (${bind(t.variant, 'users.email', `@${dA}`)}, ${bind(t.variant, 'users.email', `bob@${dA}`)}) ORDER BY priority`.execute(
      t.handle.db,
    );
    expect(rows.map((r) => [Number(r.priority), Number(r.policy_id)])).toEqual([
      [5, pA],
      [10, pShared],
    ]);
  });

  it("lets domain admins manage only their domains' own policies; users get 404", async () => {
    const listed = (await (await send('GET', '/v1/policies', undefined, adminA)).json()) as any;
    expect(listed.items.map((p: any) => p.id)).toContain(pA);
    expect(listed.items.map((p: any) => p.id)).not.toContain(pShared);
    expect((await send('GET', `/v1/policies/${pShared}`, undefined, adminA)).status).toBe(404);
    expect((await send('PATCH', `/v1/policies/${pShared}`, { quarantine: { spam: false } }, adminA)).status).toBe(404);
    expect((await send('GET', '/v1/policies', undefined, userAlice)).status).toBe(404);
    expect((await send('GET', `/v1/policies/${pA}`, undefined, userAlice)).status).toBe(404);
    expect((await send('PUT', `/v1/policies/assignments/alice@${dA}`, { policy_id: pA }, userAlice)).status).toBe(404);
    expect((await send('PUT', `/v1/policies/assignments/@${dB}`, { policy_id: pA }, adminA)).status).toBe(404);
    expect((await send('PUT', '/v1/policies/assignments/@.', { policy_id: pA }, adminA)).status).toBe(404);
    // assigning someone else's policy would take it from them: refused
    const other = await send('PUT', `/v1/policies/assignments/carol@${dA}`, { policy_id: pShared }, adminA);
    expect(other.status).toBe(400);
    expect(await other.json()).toMatchObject({ field: 'policy_id' });
    const ok = await send('PUT', `/v1/policies/assignments/carol@${dA}`, { policy_id: pA }, adminA);
    expect(await ok.json()).toEqual({ recipient: `carol@${dA}`, policy_id: pA, previous_policy_id: null });

    const patched = await send(
      'PATCH',
      `/v1/policies/${pA}`,
      { quarantine: { spam: false, virus: true }, levels: { spam_kill_level: 6.5 } },
      adminA,
    );
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ quarantine: { spam: false, virus: true }, levels: { spam_kill_level: 6.5 } });
    const row = await policyRow(pA);
    expect([row.spam_lover, row.bypass_spam_checks, row.virus_lover, row.bypass_virus_checks]).toEqual(['Y', 'N', 'N', 'N']);
    expect(Number(row.spam_kill_level)).toBe(6.5);
    const audit = (await (await send('GET', '/v1/audit?action=policy.update')).json()) as any;
    expect(audit.items.some((e: any) => e.detail?.policy_id === pA)).toBe(true);
  });

  it("refuses a domain admin naming its policy '@.' or 'inherit' (names that reach other domains)", async () => {
    const before = await policyRow(pA);
    for (const name of ['@.', 'inherit', 'Inherit ']) {
      const res = await send('PATCH', `/v1/policies/${pA}`, { raw: { policy_name: name } }, adminA);
      expect(res.status, name).toBe(400);
      expect(await res.json()).toMatchObject({ field: 'raw.policy_name' });
    }
    expect(await policyRow(pA)).toEqual(before);
    // still its own policy, still visible to it
    expect((await send('GET', `/v1/policies/${pA}`, undefined, adminA)).status).toBe(200);
  });

  it('lets a domain admin change only verdict columns: routing, archiving, notification and sa_userconf columns answer 403 naming the field', async () => {
    const before = await policyRow(pA);
    const refused: Array<[Record<string, unknown>, string]> = [
      [{ raw: { forward_method: 'smtp:[10.0.0.5]:25' } }, 'raw.forward_method'],
      [{ raw: { archive_quarantine_to: 'copy@outside.example' } }, 'raw.archive_quarantine_to'],
      [{ raw: { spam_quarantine_to: 'spam@outside.example' } }, 'raw.spam_quarantine_to'],
      [{ raw: { clean_quarantine_to: 'all@outside.example' } }, 'raw.clean_quarantine_to'],
      [{ raw: { virus_admin: 'me@outside.example' } }, 'raw.virus_admin'],
      [{ raw: { spam_admin: 'me@outside.example' } }, 'raw.spam_admin'],
      [{ raw: { sa_userconf: 'sql:x' } }, 'raw.sa_userconf'],
      [{ raw: { addr_extension_spam: 'spam' } }, 'raw.addr_extension_spam'],
      [{ raw: { message_size_limit: 1 } }, 'raw.message_size_limit'],
      [{ raw: { warnvirusrecip: 'Y' } }, 'raw.warnvirusrecip'],
      // one refused column refuses the whole patch: the allowed part is not written either
      [
        { quarantine: { spam: false }, levels: { spam_tag2_level: 3 }, raw: { FORWARD_METHOD: 'smtp:[127.0.0.1]:10025' } },
        'raw.FORWARD_METHOD',
      ],
    ];
    for (const [body, field] of refused) {
      const res = await send('PATCH', `/v1/policies/${pA}`, body, adminA);
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toMatchObject({ code: 'forbidden', field });
    }
    // banned rule names: only the fixed set
    for (const bad of ['NOSUCHRULE', 'DEFAULT,ALLOW_EVERYTHING', '']) {
      const res = await send('PATCH', `/v1/policies/${pA}`, { raw: { banned_rulenames: bad } }, adminA);
      expect(res.status, bad).toBe(400);
      expect(await res.json()).toMatchObject({ field: 'raw.banned_rulenames' });
    }
    expect(await policyRow(pA)).toEqual(before);

    const allowed = await send(
      'PATCH',
      `/v1/policies/${pA}`,
      {
        quarantine: { banned: true },
        levels: { spam_tag_level: 1 },
        raw: {
          spam_tag3_level: 12,
          spam_subject_tag2: '[SPAM] ',
          banned_rulenames: 'ALLOW_MS_OFFICE,DEFAULT',
          unchecked_lover: 'N',
          bypass_header_checks: 'N',
        },
      },
      adminA,
    );
    expect(allowed.status).toBe(200);
    const row = await policyRow(pA);
    expect([row.spam_subject_tag2, row.banned_rulenames, row.unchecked_lover, row.banned_files_lover]).toEqual([
      '[SPAM] ',
      'ALLOW_MS_OFFICE,DEFAULT',
      'N',
      'N',
    ]);
    expect([row.forward_method, row.archive_quarantine_to, row.sa_userconf]).toEqual([
      before.forward_method,
      before.archive_quarantine_to,
      before.sa_userconf,
    ]);

    // the same columns are an admin's to change
    const admin = await send('PATCH', `/v1/policies/${pA}`, {
      raw: { forward_method: 'smtp:[127.0.0.1]:10025', banned_rulenames: 'MY_OWN_RULE' },
    });
    expect(admin.status).toBe(200);
    expect((await policyRow(pA)).forward_method).toBe('smtp:[127.0.0.1]:10025');
    expect((await send('PATCH', `/v1/policies/${pA}`, { raw: { forward_method: null, banned_rulenames: null } })).status).toBe(200);
  });

  it("answers a rename onto another policy's name with 409 where names are unique (iRedMail), never 500", async () => {
    const other = (await policyRow(pShared)).policy_name as string;
    const res = await send('PATCH', `/v1/policies/${pA}`, { raw: { policy_name: other } });
    if (variantName.endsWith('iredmail')) {
      expect(res.status).toBe(409);
      expect(await res.json()).toMatchObject({ code: 'conflict', field: 'raw.policy_name' });
    } else {
      // upstream declares no unique name: the rename is allowed; put it back
      expect(res.status).toBe(200);
      const restore = await send('PATCH', `/v1/policies/${pA}`, { raw: { policy_name: `pa-${dA.slice(3, 11)}` } });
      expect(restore.status).toBe(200);
    }
  });

  it('refuses unknown columns, negative levels and bad values with 400, writing nothing', async () => {
    const before = await policyRow(pShared);
    const cases: Array<[unknown, string]> = [
      [{ raw: { no_such_column: 'x' } }, 'raw.no_such_column'],
      [{ raw: { id: 5 } }, 'raw.id'],
      [{ levels: { spam_tag2_level: -1 } }, 'levels.spam_tag2_level'],
      [{ raw: { spam_kill_level: -3 } }, 'raw.spam_kill_level'],
      [{ raw: { spam_lover: 'maybe' } }, 'raw.spam_lover'],
      [{ raw: { spam_subject_tag: 'x\r\ny' } }, 'raw.spam_subject_tag'],
      [{ quarantine: { spam: false }, raw: { spam_lover: 'N' } }, 'raw.spam_lover'],
      [
        { quarantine: { spam: false }, levels: { spam_tag_level: 1 }, raw: { spam_quarantine_to: 'x'.repeat(65) } },
        'raw.spam_quarantine_to',
      ],
      [{}, 'body'],
      [{ colour: 'blue' }, 'colour'],
    ];
    for (const [body, field] of cases) {
      const res = await send('PATCH', `/v1/policies/${pShared}`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await res.json()).toMatchObject({ field });
    }
    expect(await policyRow(pShared)).toEqual(before);
    const raw = await send('PATCH', `/v1/policies/${pShared}`, { raw: { spam_subject_tag: '[SPAM] ', message_size_limit: 1000 } });
    expect(raw.status).toBe(200);
    expect(((await raw.json()) as any).raw).toMatchObject({ spam_subject_tag: '[SPAM] ', message_size_limit: 1000 });
  });
});
