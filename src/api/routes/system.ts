import { sql } from 'kysely';
import { LATEST_VERSION, appliedVersion } from '../../db/migrations.ts';
import { newRouter } from '../env.ts';
import { DOCS_HEADERS, DOCS_HTML, DOCS_INIT_JS } from '../docs.ts';

export function systemRoutes() {
  const r = newRouter();
  r.get('/healthz', (c) => c.json({ status: 'ok' }));
  r.get('/readyz', async (c) => {
    const { db, variant } = c.get('deps');
    await sql`SELECT 1`.execute(db);
    const version = await appliedVersion(db);
    const migrated = version !== null && version >= LATEST_VERSION;
    return c.json(
      {
        status: migrated ? 'ready' : 'not_ready',
        database: 'reachable',
        schema_variant: variant.name,
        migrations: { applied: version ?? 0, expected: LATEST_VERSION },
        ...(migrated ? {} : { action: 'run `quarantine-edge migrate` (npm run migrate)' }),
      },
      migrated ? 200 : 503,
    );
  });
  // Pinned Swagger UI with SRI under a CSP (src/api/docs.ts).
  r.get('/docs', (c) => c.html(DOCS_HTML, 200, DOCS_HEADERS));
  r.get('/docs/init.js', (c) => c.body(DOCS_INIT_JS, 200, { ...DOCS_HEADERS, 'content-type': 'text/javascript; charset=utf-8' }));
  r.get('/', (c) => c.redirect('/docs'));
  return r;
}
