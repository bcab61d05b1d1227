// STATE_DATABASE_URL on Workers (README "State in its own database"): whether the state is apart is
// decided on what was configured. A HYPERDRIVE binding hands the Worker a connection string of its
// own (Hyperdrive's host, credentials and parameters), never DATABASE_URL as written: comparing
// STATE_DATABASE_URL with that string took the same database for another one.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import worker, { type WorkerEnv } from '../../functions/worker.ts';

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} };

/**
 * The same database as `url` under another connection string, as a Hyperdrive binding's looks
 * (workerd appends ssl-mode to a MySQL one; a PostgreSQL one carries sslmode=disable).
 */
function hyperdriveFor(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'mysql:' || u.protocol === 'mariadb:') u.searchParams.set('ssl-mode', 'DISABLED');
  else u.searchParams.set('sslmode', 'disable');
  return u.toString();
}

async function readyz(e: WorkerEnv): Promise<Record<string, unknown>> {
  const res = await worker.fetch(new Request('https://quarantine.test/readyz'), e, ctx);
  const body = (await res.json()) as Record<string, unknown>;
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body).toMatchObject({ status: 'ready' });
  return body;
}

describe('functions/worker.ts in workerd: STATE_DATABASE_URL with a HYPERDRIVE binding', () => {
  it('STATE_DATABASE_URL equal to DATABASE_URL is one database, reached through Hyperdrive, not a state apart', async () => {
    const url = String(env.DATABASE_URL);
    const hyperdrive = hyperdriveFor(url);
    expect(hyperdrive).not.toBe(url);
    const same = await readyz({ ...env, HYPERDRIVE: { connectionString: hyperdrive }, STATE_DATABASE_URL: url });
    expect(same).not.toHaveProperty('state_database');
    // without the binding, DATABASE_URL alone: the same
    expect(await readyz({ ...env, STATE_DATABASE_URL: url })).not.toHaveProperty('state_database');
    // another URL than DATABASE_URL is apart (here it names the same database, which has our tables:
    // what tells the two apart is the configuration, as the README says)
    expect(await readyz({ ...env, STATE_DATABASE_URL: hyperdrive })).toMatchObject({ state_database: 'apart' });
  });
});
