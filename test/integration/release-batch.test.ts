// A bulk release's ledger in batches (src/quarantine/release-batch.ts, bulk-release.ts), on every
// schema variant: a batch of claims is one transaction in which a message is claimed whole or not
// at all; a batch of settlements is one transaction, all of it or none; and a batch the database
// refuses is settled again one message at a time, so that only the refused message ends unknown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseItemId, type MailKey } from '../../src/amavis/mail-id.ts';
import type { Identity } from '../../src/auth/identity.ts';
import { AppError } from '../../src/errors.ts';
import type { ReleaseReply, ReleaseRequest, ReleaseTransport } from '../../src/release/transport.ts';
import { claimBatch, settleBatch } from '../../src/quarantine/release-batch.ts';
import { outcomes, planRelease, type ReleasePlan } from '../../src/quarantine/release.ts';
import { loadTargets, setRecipientStatus } from '../../src/quarantine/target.ts';
import { VARIANTS } from '../support/databases.ts';
import { testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { refuseStatusWrite } from '../support/refuse.ts';

const NOW = Math.floor(Date.now() / 1000);
const admin: Identity = { role: 'admin', actor: 'batch-test', keyId: null };

/**
 * amavisd as a test double of the transport: holds every request until `hold` are in, then
 * answers them all at once, 250 for each recipient.
 */
class HeldTransport implements ReleaseTransport {
  readonly kind = 'direct' as const;
  hold = 4;
  requests: ReleaseRequest[] = [];
  private waiting: Array<() => void> = [];
  async release(req: ReleaseRequest, beforeSend?: () => Promise<void>): Promise<ReleaseReply> {
    if (beforeSend) await beforeSend();
    this.requests.push(req);
    await new Promise<void>((r) => {
      this.waiting.push(r);
      if (this.waiting.length >= this.hold) for (const w of this.waiting.splice(0)) w();
    });
    const setreplies = req.recipients.map((r) => `250 2.0.0 Ok, from MTA: 250 2.0.0 Ok: queued (for ${r})`);
    return { setreplies, attributes: setreplies.map((s): [string, string] => ['setreply', s]), released: true, via: 'direct' };
  }
}

describe.each(VARIANTS)('bulk release in batches on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let d: string;
  const transport = new HeldTransport();

  const message = (...locals: string[]) => ({
    timeNum: NOW - 100,
    content: 'S',
    sender: 'spammer@batch.example',
    subject: 'batch',
    spamLevel: 9,
    recipients: locals.map((l) => ({ address: `${l}@${d}` })),
  });
  const audits = async (mailId: string) =>
    t.handle.db.selectFrom('qe_audit').select(['id', 'result']).where('mail_id', '=', mailId).orderBy('id').execute();
  const attempts = async (mailId: string) =>
    t.handle.db.selectFrom('qe_release_attempts').select(['audit_id', 'state']).where('mail_id', '=', mailId).execute();
  const plan = async (ids: string[]) => {
    const keys = ids.map((id) => parseItemId(id)!);
    const targets = await loadTargets(t.deps, admin, keys);
    const out: Array<{ key: MailKey; plan: ReleasePlan }> = [];
    for (const key of keys) {
      const target = targets.get(`${key.partitionTag}.${key.mailId}`)!;
      out.push({ key, plan: await planRelease(t.deps, admin, { key }, target) });
    }
    return out;
  };

  beforeAll(async () => {
    t = await testApp(variantName, { release: transport });
    f = new Fixtures(t);
    [d] = uniqueDomains(1) as [string];
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
  });

  it('claims a batch in one transaction: a message whose copies changed since they were read, or named twice, is not claimed', async () => {
    const [a, b, c] = (await f.add(message('ann'), message('bob', 'bea'), message('cat'))) as [string, string, string];
    const planned = await plan([a, b, c, `00.${a.slice(2)}`]);
    // one of b's two copies is released by someone else after the batch read it
    await setRecipientStatus(t.handle.db, t.deps, planned[1]!.key, [planned[1]!.plan.fresh[1]!.rseqnum], 'R');
    expect(await f.rs(b)).toEqual([' ', 'R']);

    const result = await claimBatch(t.deps, admin, planned);
    expect(typeof result[0]).toBe('number');
    expect(result[1]).toBeInstanceOf(AppError);
    expect((result[1] as AppError).code).toBe('nothing_to_release');
    expect(typeof result[2]).toBe('number');
    expect((result[3] as AppError).code).toBe('nothing_to_release'); // a named twice: claimed once
    expect(await f.rs(a)).toEqual(['p']);
    expect(await f.rs(b)).toEqual([' ', 'R']); // neither copy claimed
    expect(await f.rs(c)).toEqual(['p']);
    expect(await audits(a.slice(2))).toEqual([{ id: expect.anything(), result: 'pending' }]);
    expect(await audits(b.slice(2))).toEqual([]);
    expect(await attempts(a.slice(2))).toEqual([{ audit_id: expect.anything(), state: 'pending' }]);
    expect(Number((await attempts(c.slice(2)))[0]!.audit_id)).toBe(result[2]);
  });

  it('settles a batch in one transaction: released copies R, refused ones back, each audit its result, the attempts gone', async () => {
    const [g, h] = (await f.add(message('gus'), message('hal', 'hue'))) as [string, string];
    const planned = await plan([g, h]);
    const ids = (await claimBatch(t.deps, admin, planned)) as number[];
    const answer = (i: number, setreplies: string[]) => {
      const results = outcomes(planned[i]!.plan.addresses, { setreplies, attributes: [], released: false, via: 'direct' });
      const n = results.filter((r) => r.released).length;
      const status = n === results.length ? ('released' as const) : n ? ('partial' as const) : ('failed' as const);
      return { ...planned[i]!, auditId: ids[i]!, results, status };
    };
    await settleBatch(t.deps, admin, [answer(0, ['250 2.0.0 Ok']), answer(1, ['250 2.0.0 Ok', '550 5.1.1 refused'])], null);
    expect(await f.rs(g)).toEqual(['R']);
    expect(await f.rs(h)).toEqual(['R', ' ']);
    expect((await audits(g.slice(2))).map((x) => x.result)).toEqual(['ok']);
    expect((await audits(h.slice(2))).map((x) => x.result)).toEqual(['partial']);
    expect(await attempts(g.slice(2))).toEqual([]);
    expect(await attempts(h.slice(2))).toEqual([]);
  });

  it('a settling batch the database refuses for one message records none of the batch', async () => {
    const [m, n] = (await f.add(message('max'), message('ned'))) as [string, string];
    const planned = await plan([m, n]);
    const ids = (await claimBatch(t.deps, admin, planned)) as number[];
    const drop = await refuseStatusWrite(t, n.slice(2));
    try {
      const ok = (i: number) => ({
        ...planned[i]!,
        auditId: ids[i]!,
        results: [{ recipient: planned[i]!.plan.addresses[0]!, released: true, reply: '250 2.0.0 Ok' }],
        status: 'released' as const,
      });
      await expect(settleBatch(t.deps, admin, [ok(0), ok(1)], null)).rejects.toThrow();
    } finally {
      await drop();
    }
    for (const id of [m, n]) {
      expect(await f.rs(id)).toEqual(['p']);
      expect((await audits(id.slice(2))).map((x) => x.result)).toEqual(['pending']);
      expect((await attempts(id.slice(2))).map((x) => x.state)).toEqual(['pending']);
    }
  });

  it('a bulk whose answers arrive together: a refused write makes only that message unknown, the others released', async () => {
    const ids = await f.add(message('ora'), message('pat'), message('quinn'), message('rae'));
    const refused = ids[2]!.slice(2);
    transport.hold = 4; // the four answers come at once: after the first, three settle in one batch
    const drop = await refuseStatusWrite(t, refused);
    let res: Response;
    try {
      res = await t.get('/v1/quarantine/bulk', undefined, {
        method: 'POST',
        body: JSON.stringify({ action: 'release', ids }),
        headers: { 'content-type': 'application/json' },
      });
    } finally {
      await drop();
    }
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: Array<{ id: string; status: number; error?: { code: string } }> };
    expect(results.map((r) => [r.id, r.status, r.error?.code ?? null])).toEqual([
      [ids[0], 200, null],
      [ids[1], 200, null],
      [ids[2], 502, 'release_outcome_unknown'],
      [ids[3], 200, null],
    ]);
    for (const id of [ids[0]!, ids[1]!, ids[3]!]) {
      expect(await f.rs(id)).toEqual(['R']);
      expect((await audits(id.slice(2))).map((x) => x.result)).toEqual(['ok']);
      expect(await attempts(id.slice(2))).toEqual([]);
    }
    expect(await f.rs(ids[2]!)).toEqual(['p']);
    expect((await audits(refused)).map((x) => x.result)).toEqual(['unknown']);
    expect((await attempts(refused)).map((x) => x.state)).toEqual(['unknown']);
    expect(transport.requests.filter((r) => r.mailId === refused)).toHaveLength(1);
  });
});
