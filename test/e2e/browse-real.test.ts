// The read API pointed at a database that a real amavisd-new filled: it lists exactly the mail
// amavisd quarantined, with amavisd's own types, scores, senders, recipients and subjects.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { detectSchema } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import { bannedAttachment, badHeader, blacklisted, eicar, gtube, startAmavisd, type Harness, type Mail } from './harness/amavisd.ts';

const KEY = 'e2e-admin-key-0123456789abcdef';
const SENDER = 'sender@example.org';

function withSubject(m: Mail, subject: string): Mail {
  const encoded = `=?UTF-8?B?${Buffer.from(subject, 'utf8').toString('base64')}?=`;
  return { ...m, subject, raw: String(m.raw).replace(/^Subject: .*$/m, `Subject: ${encoded}`) };
}

describe.each(['mariadb', 'pg'] as const)('read API over a real amavisd-new quarantine on %s', (db) => {
  let h: Harness;
  let handle: DbHandle;
  let app: ReturnType<typeof createApp>;

  beforeAll(async () => {
    h = await startAmavisd({ db });
    handle = await openDatabase({ url: h.databaseUrl, runtime: 'node', poolSize: 2 });
    await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
    const variant = await detectSchema(handle.db, handle.dialect);
    app = createApp({
      config: parseConfig({ ADMIN_API_KEY: KEY }),
      database: sharedProvider(handle, variant),
      log: { info() {}, warn() {}, error() {} },
    });
  });
  afterAll(async () => {
    await handle?.close();
    await h?.stop();
  });

  it('lists exactly what amavisd quarantined, emoji intact', async () => {
    const rcpts = ['alice@e2e.test', 'bob@e2e.test'];
    const spam = withSubject(h.spamAssassin ? gtube(SENDER, rcpts) : blacklisted(rcpts), 'Gewinn 🎁 für Sie');
    const mails = [spam, bannedAttachment(SENDER, 'alice@e2e.test'), badHeader(SENDER, 'carol@e2e.test'), eicar(SENDER, 'alice@e2e.test')];
    const ids: string[] = [];
    for (const m of mails) {
      await h.submit(m);
      const row = await h.waitForMsg(m.messageId);
      ids.push(`0.${row.mailId}`);
    }
    const res = await app.request('/v1/quarantine?limit=50', { headers: { authorization: `Bearer ${KEY}` } });
    expect(res.status).toBe(200);
    const { items } = (await res.json()) as { items: any[] };
    expect(items.map((i) => i.id).sort()).toEqual([...ids].sort());
    const byId = new Map(items.map((i) => [i.id, i]));
    const s = byId.get(ids[0]!);
    expect(s).toMatchObject({ type: 'spam', content_code: 'S', subject: 'Gewinn 🎁 für Sie', sender: spam.from });
    expect(s.recipients.map((r: any) => r.address).sort()).toEqual(rcpts);
    expect(s.score).toBeGreaterThan(h.spamAssassin ? 900 : 5);
    expect(typeof s.recipients[0].score).toBe('number');
    expect(byId.get(ids[1]!)).toMatchObject({
      type: 'banned',
      subject: 'e2e banned',
      recipients: [{ address: 'alice@e2e.test', status: 'pending' }],
    });
    expect(byId.get(ids[2]!)).toMatchObject({ type: 'bad-header', recipients: [{ address: 'carol@e2e.test' }] });
    expect(byId.get(ids[3]!)).toMatchObject({ type: 'virus' });
    for (const i of items) expect(i.received_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/);

    const detail = (await (await app.request(`/v1/quarantine/${ids[1]}`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as any;
    expect(detail.attachments).toEqual([expect.objectContaining({ filename: 'invoice.exe' })]);
    const raw = await (await app.request(`/v1/quarantine/${ids[3]}/raw`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    expect(raw).not.toMatch(/^X-Quarantine-ID/m);
    expect(raw).toContain('eicar.com.txt');
  });
});
