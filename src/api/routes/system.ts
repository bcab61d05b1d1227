import { checkReadiness, type DatabaseHealth } from '../../db/readiness.ts';
import type { DatabaseProvider } from '../../deps.ts';
import type { ProbeOptions } from '../../gateways/probe.ts';
import { newRouter } from '../env.ts';
import { DOCS_HEADERS, DOCS_HTML, DOCS_INIT_JS } from '../docs.ts';

/** /readyz answers within this, whatever the database does (a probe's own deadline is below 2 s). */
const READY_DEADLINE_MS = 1500;

export function systemRoutes(opts: {
  database: DatabaseProvider;
  health: DatabaseHealth;
  now: () => number;
  readOnly: boolean;
  /** report each registered gateway (src/gateways/probe.ts) */
  gateways?: Omit<ProbeOptions, 'deadlineAt'>;
}) {
  const r = newRouter();
  r.get('/healthz', (c) => c.json({ status: 'ok' }));
  r.get('/readyz', async (c) => {
    const ready = await checkReadiness(opts.database, opts.health, opts.now, READY_DEADLINE_MS, opts.readOnly, opts.gateways);
    if (ready.retryAfter !== undefined) c.header('retry-after', String(ready.retryAfter));
    return c.json(ready.body, ready.status);
  });
  // Pinned Swagger UI with SRI under a CSP (src/api/docs.ts).
  r.get('/docs', (c) => c.html(DOCS_HTML, 200, DOCS_HEADERS));
  r.get('/docs/init.js', (c) => c.body(DOCS_INIT_JS, 200, { ...DOCS_HEADERS, 'content-type': 'text/javascript; charset=utf-8' }));
  r.get('/', (c) => c.redirect('/docs'));
  return r;
}
