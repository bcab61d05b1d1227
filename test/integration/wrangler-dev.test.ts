// The README's local Worker loop, followed literally: `wrangler dev --test-scheduled` with a
// .dev.vars file and a [[hyperdrive]] block whose local connection string
// (CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_HYPERDRIVE) points at MariaDB.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createVariantDatabase, dropVariantDatabase } from '../support/databases.ts';

vi.setConfig({ testTimeout: 180_000, hookTimeout: 180_000 });
const ROOT = new URL('../..', import.meta.url).pathname;
const ADMIN = 'wrangler-dev-admin-key-0123456789abcdef';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('wrangler dev with Hyperdrive on MariaDB (README: the local Worker loop)', () => {
  const suffix = `${inject('runSuffix')}wd`;
  let dir: string;
  let child: ChildProcess;
  let output = '';
  let base = '';

  beforeAll(async () => {
    const url = await createVariantDatabase('mysql-iredmail', { suffix });
    dir = mkdtempSync(join(tmpdir(), 'qe-wrangler-'));
    // the project's wrangler.toml plus the README's [[hyperdrive]] block (paths made absolute)
    const { readFileSync } = await import('node:fs');
    const toml =
      readFileSync(join(ROOT, 'wrangler.toml'), 'utf8')
        .replace('main = "functions/worker.ts"', `main = "${ROOT}functions/worker.ts"`)
        .replaceAll('"./src/', `"${ROOT}src/`) + '\n[[hyperdrive]]\nbinding = "HYPERDRIVE"\nid = "00000000000000000000000000000000"\n';
    writeFileSync(join(dir, 'wrangler.toml'), toml.replace(/^\[vars\][\s\S]*?(?=\n#|\n\[)/m, '[vars]\n'));
    writeFileSync(
      join(dir, '.dev.vars'),
      [`ADMIN_API_KEY=${ADMIN}`, 'LINK_SECRET=wrangler-dev-link-secret-0123456789abcdef', 'PUBLIC_URL=http://127.0.0.1'].join('\n') + '\n',
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = spawn(
      process.execPath,
      [
        join(ROOT, 'node_modules/wrangler/bin/wrangler.js'),
        'dev',
        '--config',
        join(dir, 'wrangler.toml'),
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
        '--test-scheduled',
        '--inspector-port',
        String(await freePort()),
      ],
      {
        cwd: dir,
        env: {
          ...process.env,
          WRANGLER_SEND_METRICS: 'false',
          CLOUDFLARE_CF_FETCH_ENABLED: 'false',
          // workerd appends ?ssl-mode=... to this when it hands it to the Worker
          CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_HYPERDRIVE: url,
        },
      },
    );
    const take = (b: Buffer) => (output += String(b));
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    const started = Date.now();
    while (!/Ready on/.test(output)) {
      if (child.exitCode !== null || Date.now() - started > 150_000) throw new Error(`wrangler dev did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    await dropVariantDatabase('mysql-iredmail', { suffix });
  });

  it('serves /readyz over the Hyperdrive binding, answers a key from .dev.vars, runs the cron, and mysql2 never warns', async () => {
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status, output).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', database: 'reachable', schema_variant: 'mysql-iredmail' });
    const list = await fetch(`${base}/v1/quarantine?limit=1`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(list.status).toBe(200);
    const cron = await fetch(`${base}/__scheduled?cron=${encodeURIComponent('*/15 * * * *')}`);
    expect(cron.status, output).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect(output).not.toMatch(/Ignoring invalid configuration option/);
    expect(output).not.toMatch(/misconfigured/);
  });
});
