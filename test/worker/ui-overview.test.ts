import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import worker, { type WorkerEnv } from '../../functions/worker.ts';
import { PAGE_CSP } from '../../src/ui/routes.tsx';
import { type Fetcher, keySession } from '../support/ui-client.ts';
import { BASE } from './support.ts';

// Issue 17.4 in workerd: the admins' overview (/ui) through the real functions/worker.ts, over the
// database a real amavisd-new quarantined into minutes ago (test/worker/real-amavisd.ts; the main
// seed's mail is dated 2026-01-01, outside the overview's last 30 days). One banned message from
// sender@example.org for one owner at e2e.test: the page's day chart, its table and the top lists
// must show it, whatever the release test in this project did to its copy since.
describe('functions/worker.ts in workerd: the admins’ overview page', () => {
  const real = inject('realAmavisd')[inject('workerDb')];
  const realEnv: WorkerEnv = { ...env, DATABASE_URL: real.url };
  const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} };
  const overWorker: Fetcher = { request: (url, init) => worker.fetch(new Request(url, init), realEnv, ctx) };

  it('signs in with an admin key and shows the last 30 days as charts with their tables', async () => {
    const browser = await keySession(overWorker, real.adminKey, BASE);
    const { res, html } = await browser.page('/ui');
    expect(res.status, html).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain('<h1>Overview</h1>');
    expect(html).toMatch(/<svg class="bars" viewBox="0 0 300 100" preserveAspectRatio="none" role="img" aria-label="Bar chart: /);
    // a row per day of the 30 (UTC), the message's day with the one message
    expect(html.match(/<th scope="row">\d{4}-\d{2}-\d{2}<\/th>/g)).toHaveLength(30);
    const day = new Date(real.timeNum * 1000).toISOString().slice(0, 10);
    expect(html).toContain(`<th scope="row">${day}</th><td class="num">1</td>`);
    expect(html).toContain('>e2e.test</a></td><td class="num">1</td>');
    expect(html).toContain('>sender@example.org</a></td><td class="num">1</td>');
  });
});
