/**
 * The list in each order (src/quarantine/sort.ts) and the bounded total (src/quarantine/count.ts),
 * timed at the bench's scale (issue 17): absolute times on this machine, no floor. Each order: the
 * first page of 50 over the API and the page after it (its cursor), interleaved; the count: the
 * verb itself over the bench database (the /ui list calls it once per page view).
 */
import type { SchemaVariant } from '../src/amavis/schema.ts';
import type { Identity } from '../src/auth/identity.ts';
import type { DbHandle } from '../src/db/connect.ts';
import type { Deps } from '../src/deps.ts';
import { countQuarantine } from '../src/quarantine/count.ts';
import type { ListInput } from '../src/quarantine/list.ts';
import { SORT_KEYS } from '../src/quarantine/sort.ts';
import { request, stats } from './common.ts';

export async function benchSorted(apiPort: number, samples: number) {
  const out: Record<string, unknown> = {};
  for (const key of SORT_KEYS) {
    for (const order of ['asc', 'desc']) {
      const first = `/v1/quarantine?limit=50&sort=${key}&order=${order}`;
      const res = await request(apiPort, first);
      if (res.status !== 200) {
        // a statement timeout (503) is a figure too: record it and time a few more, not the whole run
        const ms: number[] = [];
        let errors = 1;
        for (let i = 0; i < 3; i++) {
          const t0 = performance.now();
          if ((await request(apiPort, first)).status !== 200) errors++;
          ms.push(performance.now() - t0);
        }
        out[`${key}_${order}`] = { first_status: res.status, first_page_ms: stats(ms), errors };
        continue;
      }
      const cursor = (JSON.parse(res.body) as { next_cursor: string | null }).next_cursor;
      const next = cursor ? `${first}&cursor=${encodeURIComponent(cursor)}` : first;
      for (let i = 0; i < 3; i++) await request(apiPort, first);
      const a: number[] = [];
      const b: number[] = [];
      let errors = 0;
      for (let i = 0; i < samples; i++) {
        let t0 = performance.now();
        if ((await request(apiPort, first)).status !== 200) errors++;
        a.push(performance.now() - t0);
        t0 = performance.now();
        if ((await request(apiPort, next)).status !== 200) errors++;
        b.push(performance.now() - t0);
      }
      out[`${key}_${order}`] = { first_page_ms: stats(a), next_page_ms: stats(b), errors };
    }
  }
  return out;
}

/** The bounded count for three filters, timed by calling the verb (deps: only db and variant are read). */
export async function benchCount(h: DbHandle, v: SchemaVariant, samples: number) {
  const deps = { db: h.db, variant: v } as unknown as Deps;
  const admin: Identity = { role: 'admin', actor: 'bench', keyId: null };
  const filters: Record<string, Partial<ListInput>> = {
    all_pending: {},
    spam: { types: ['spam'] },
    domain: { domain: 'd17.example.org' },
  };
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(filters)) {
    const input: ListInput = { status: 'pending', limit: 50, ...f };
    const first = await countQuarantine(deps, admin, input);
    const ms: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      await countQuarantine(deps, admin, input);
      ms.push(performance.now() - t0);
    }
    out[name] = { count: first.count, more: first.more, ms: stats(ms) };
  }
  return out;
}
