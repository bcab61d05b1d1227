import { beforeAll, describe, expect, it } from 'vitest';
import { BOOTSTRAP_KEY, call, json, list, problem, seed } from './support.ts';
import { EICAR, NOW } from './seed.ts';

const at = (secondsBefore: number) => new Date((NOW - secondsBefore) * 1000).toISOString();

describe('functions/worker.ts in workerd: /v1/quarantine', () => {
  const s = seed();
  const { ids } = s;

  beforeAll(async () => {
    await call('/healthz');
  });

  describe('listing', () => {
    it('an admin key lists the pending quarantined mail, newest first', async () => {
      const body = await list('', s.adminKey);
      expect(body.items.map((i) => i.id)).toEqual([ids.spam, ids.virus, ids.banned, ids.otherDomain]);
      expect(body.next_cursor).toBeNull();
      expect(body.items[0]).toMatchObject({
        id: ids.spam,
        partition_tag: 0,
        type: 'spam',
        content_code: 'S',
        subject: 'Congratulations, you won',
        sender: 'promo@deals.example',
        score: 12.5,
        received_at: at(10),
        recipients: [{ address: 'alice@example.com', status: 'pending', score: 12.5, content_code: 'S' }],
      });
      expect(body.items[2]).toMatchObject({
        id: ids.banned,
        partition_tag: 1,
        type: 'banned',
        received_at: at(30),
        recipients: [
          { address: 'carol@example.com', status: 'pending' },
          { address: 'dave@example.net', status: 'pending' },
        ],
      });
      // Never the release credential.
      expect(JSON.stringify(body)).not.toMatch(/secret/i);
    });

    it('the bootstrap ADMIN_API_KEY binding works like an admin key', async () => {
      const body = await list('', BOOTSTRAP_KEY);
      expect(body.items.map((i) => i.id)).toEqual([ids.spam, ids.virus, ids.banned, ids.otherDomain]);
    });

    it('in-flight (content NULL) and log-only rows are never listed, nor readable', async () => {
      const all = await list('?status=all', s.adminKey);
      expect(all.items.map((i) => i.id)).toEqual([ids.spam, ids.virus, ids.banned, ids.otherDomain, ids.released]);
      await problem(await call(`/v1/quarantine/${ids.inFlight}`, s.adminKey), 404, 'not_found');
      await problem(await call(`/v1/quarantine/${ids.logOnly}`, s.adminKey), 404, 'not_found');
    });

    it('filters by status and type', async () => {
      const released = await list('?status=released', s.adminKey);
      expect(released.items.map((i) => i.id)).toEqual([ids.released]);
      expect(released.items[0]!.recipients).toEqual([{ address: 'alice@example.com', status: 'released', score: 9, content_code: 'S' }]);
      const spamOrVirus = await list('?type=virus,banned', s.adminKey);
      expect(spamOrVirus.items.map((i) => i.id)).toEqual([ids.virus, ids.banned]);
    });

    it('pages with an opaque cursor', async () => {
      const first = await list('?limit=2', s.adminKey);
      expect(first.items.map((i) => i.id)).toEqual([ids.spam, ids.virus]);
      expect(first.next_cursor).toEqual(expect.any(String));
      const second = await list(`?limit=2&cursor=${encodeURIComponent(first.next_cursor!)}`, s.adminKey);
      expect(second.items.map((i) => i.id)).toEqual([ids.banned, ids.otherDomain]);
      expect(second.next_cursor).toBeNull();
    });
  });

  describe('domain admin scope', () => {
    it('sees only its domain, and only its own recipients of shared mail', async () => {
      const body = await list('', s.domainAdminKey);
      expect(body.items.map((i) => i.id)).toEqual([ids.spam, ids.virus, ids.banned]);
      expect(body.items[2]!.recipients.map((r) => r.address)).toEqual(['carol@example.com']);
    });

    it("another domain's item is 404 (not 403), for the item and its raw message", async () => {
      await problem(await call(`/v1/quarantine/${ids.otherDomain}`, s.domainAdminKey), 404, 'not_found');
      await problem(await call(`/v1/quarantine/${ids.otherDomain}/raw`, s.domainAdminKey), 404, 'not_found');
      // The admin does see it: the 404 is scope, not a missing row.
      const item = await json(await call(`/v1/quarantine/${ids.otherDomain}`, s.adminKey));
      expect(item.id).toBe(ids.otherDomain);
    });

    it('a filter cannot widen the scope', async () => {
      const body = await list('?domain=example.net', s.domainAdminKey);
      expect(body.items).toEqual([]);
    });
  });

  describe('bad input is a 400 problem', () => {
    it.each([
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['type=spam,nonsense', 'type'],
      ['since=yesterday', 'since'],
      ['unknown_param=1', 'unknown_param'],
    ])('?%s', async (query, field) => {
      const body = await problem(await call(`/v1/quarantine?${query}`, s.adminKey), 400, 'invalid_field');
      expect(body.field).toBe(field);
    });

    it('a tampered cursor', async () => {
      const { next_cursor } = await list('?limit=1', s.adminKey);
      const c = next_cursor!;
      const tampered = c.slice(0, 3) + (c[3] === 'A' ? 'B' : 'A') + c.slice(4);
      await problem(await call(`/v1/quarantine?cursor=${encodeURIComponent(tampered)}`, s.adminKey), 400, 'invalid_cursor');
    });

    it('an id that is not "<partition>.<mail_id>"', async () => {
      const body = await problem(await call('/v1/quarantine/not-an-id', s.adminKey), 400, 'invalid_field');
      expect(body.field).toBe('id');
    });
  });

  describe('reading one message (postal-mime inside workerd)', () => {
    it('multipart/alternative: headers, text and html, without amavisd lines', async () => {
      const d = await json<Record<string, unknown>>(await call(`/v1/quarantine/${ids.spam}`, s.adminKey));
      expect(d).toMatchObject({ id: ids.spam, type: 'spam', subject: 'Congratulations, you won', attachments: [] });
      expect((d.text as string).trim()).toBe('Hello Alice, plain part.');
      expect((d.html as string).trim()).toBe('<p>Hello <b>Alice</b>, html part.</p>');
      const headers = d.headers as Array<{ name: string; value: string }>;
      expect(headers.find((h) => h.name.toLowerCase() === 'subject')?.value).toBe('Congratulations, you won');
      expect(headers.find((h) => h.name.toLowerCase() === 'message-id')?.value).toBe('<spam-1@deals.example>');
      expect(headers.some((h) => /^x-(envelope|quarantine)/i.test(h.name))).toBe(false);
    });

    it('multipart/mixed: the attachment with its decoded size', async () => {
      const d = await json<Record<string, unknown>>(await call(`/v1/quarantine/${ids.virus}`, s.adminKey));
      expect(d.type).toBe('virus');
      expect((d.text as string).trim()).toBe('See the attachment.');
      expect(d.html).toBeNull();
      expect(d.attachments).toEqual([
        {
          filename: 'eicar.com',
          content_type: 'application/octet-stream',
          size: EICAR.length,
          sha256: '275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f',
        },
      ]);
    });

    it('a domain admin reads mail of its own domain', async () => {
      const d = await json<Record<string, unknown>>(await call(`/v1/quarantine/${ids.banned}`, s.domainAdminKey));
      expect(d.id).toBe(ids.banned);
      expect((d.recipients as Array<{ address: string }>).map((r) => r.address)).toEqual(['carol@example.com']);
    });

    it("GET /raw is the original message, byte for byte after amavisd's lines", async () => {
      const res = await call(`/v1/quarantine/${ids.spam}/raw`, s.adminKey);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('message/rfc822');
      const raw = new TextDecoder().decode(await res.arrayBuffer());
      expect(raw.startsWith('From: "Deals" <promo@deals.example>\n')).toBe(true);
      expect(raw).not.toMatch(/X-Envelope-|X-Quarantine-ID/);
    });
  });
});
