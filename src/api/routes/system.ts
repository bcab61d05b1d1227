import { swaggerUI } from '@hono/swagger-ui';
import { sql } from 'kysely';
import { LATEST_VERSION, appliedVersion } from '../../db/migrations.ts';
import { newRouter } from '../env.ts';

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
        // Sender lists and policies need amavisd's lookup tables; the rest works without them.
        lookup_tables: variant.lookup.missing.length
          ? { status: 'missing', missing: variant.lookup.missing, detail: variant.lookup.detail }
          : { status: 'present' },
        ...(migrated ? {} : { action: 'run `quarantine-edge migrate` (npm run migrate)' }),
      },
      migrated ? 200 : 503,
    );
  });
  r.get('/docs', swaggerUI({ url: '/openapi.json' }));
  r.get('/', (c) => c.redirect('/docs'));
  return r;
}
