import { swaggerUI } from '@hono/swagger-ui';
import { checkReadiness, type DatabaseHealth } from '../../db/readiness.ts';
import type { DatabaseProvider } from '../../deps.ts';
import { newRouter } from '../env.ts';

/** /readyz answers within this, whatever the database does (a probe's own deadline is below 2 s). */
const READY_DEADLINE_MS = 1500;

export function systemRoutes(opts: { database: DatabaseProvider; health: DatabaseHealth; now: () => number }) {
  const r = newRouter();
  r.get('/healthz', (c) => c.json({ status: 'ok' }));
  r.get('/readyz', async (c) => {
    const ready = await checkReadiness(opts.database, opts.health, opts.now, READY_DEADLINE_MS);
    if (ready.retryAfter !== undefined) c.header('retry-after', String(ready.retryAfter));
    return c.json(ready.body, ready.status);
  });
  r.get('/docs', swaggerUI({ url: '/openapi.json' }));
  r.get('/', (c) => c.redirect('/docs'));
  return r;
}
