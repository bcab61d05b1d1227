/**
 * The workerd trap: an I/O object (socket) made in one request cannot be used by another
 * ("Cannot perform I/O on behalf of a different request" for mysql2; pg just hangs). The Worker
 * opens a connection per request and caches only the app and the detected schema per isolate.
 * These requests all land in the same isolate, one after another and at the same time.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { call, json, list, seed } from './support.ts';

describe('functions/worker.ts in workerd: many requests in one isolate', () => {
  const s = seed();
  const pending = [s.ids.spam, s.ids.virus, s.ids.banned, s.ids.otherDomain];

  beforeAll(async () => {
    await call('/healthz');
  });

  it('sequential requests each get a working connection', async () => {
    for (let i = 0; i < 6; i++) {
      const body = await list('', i % 2 ? s.adminKey : s.domainAdminKey);
      expect(body.items.map((it) => it.id)).toEqual(i % 2 ? pending : pending.slice(0, 3));
      expect((await json(await call('/readyz'))).schema_variant).toBe(s.variant);
    }
  });

  it('concurrent requests (lists, reads, readiness) all succeed with the right answers', async () => {
    const jobs = [
      ...Array.from({ length: 6 }, () => list('', s.adminKey).then((b) => b.items.map((i) => i.id))),
      ...pending.map((id) =>
        call(`/v1/quarantine/${id}`, s.adminKey)
          .then(json)
          .then((d) => d.id),
      ),
      ...Array.from({ length: 3 }, () =>
        call('/readyz')
          .then(json)
          .then((b) => b.status),
      ),
      list('?limit=1', s.domainAdminKey).then((b) => b.items.map((i) => i.id)),
    ];
    const results = await Promise.all(jobs);
    expect(results).toEqual([...Array.from({ length: 6 }, () => pending), ...pending, 'ready', 'ready', 'ready', [s.ids.spam]]);
  });

  it('still works after the concurrent burst (nothing was left bound to a finished request)', async () => {
    const body = await list('?status=all', s.adminKey);
    expect(body.items.map((i) => i.id)).toEqual([...pending, s.ids.released]);
    const d = await json(await call(`/v1/quarantine/${s.ids.virus}`, s.domainAdminKey));
    expect(d.id).toBe(s.ids.virus);
  });
});
