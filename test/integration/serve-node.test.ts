// `quarantine-edge serve` as a process (over a database of its own: nothing shared with other
// tests): HOST chooses the listening address (default 0.0.0.0); on Node a client cannot choose its
// request id with cf-ray (only Cloudflare sets that header: test/worker/auth-limits.test.ts); a
// client that disconnects mid-request is one log line, not an "unhandled error" with a stack.
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createVariantDatabase, dropVariantDatabase, runSuffix } from '../support/databases.ts';

vi.setConfig({ testTimeout: 90_000 });

const BIN = new URL('../../bin/quarantine-edge.js', import.meta.url).pathname;
const ADMIN = 'serve-node-admin-key-0123456789abcdef';
const cleanEnv = () =>
  Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|ADMIN_API_KEY|AMAVISD_PDP|RELAY_|PORT|HOST|LINK_SECRET)/.test(k)),
  );

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return port;
}

interface Served {
  child: ChildProcess;
  port: number;
  output: () => string;
}
const running: ChildProcess[] = [];
let databaseUrl = '';
const OWN = { suffix: runSuffix('serve') };

beforeAll(async () => {
  databaseUrl = await createVariantDatabase('pg-upstream', OWN);
});
afterAll(async () => {
  await dropVariantDatabase('pg-upstream', OWN);
});

async function serve(env: Record<string, string>): Promise<Served> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: {
      ...cleanEnv(),
      DATABASE_URL: databaseUrl,
      ADMIN_API_KEY: ADMIN,
      LINK_SECRET: 'serve-node-link-secret-0123456789abcdef',
      ...env,
      PORT: String(port),
    },
  });
  running.push(child);
  let out = '';
  child.stdout!.on('data', (b) => (out += String(b)));
  child.stderr!.on('data', (b) => (out += String(b)));
  await vi.waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`serve exited: ${out}`);
      expect(out).toMatch(/quarantine-edge listening/);
    },
    { timeout: 60_000, interval: 100 },
  );
  return { child, port, output: () => out };
}

function get(host: string, port: number, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
    const req = httpRequest({ host, port, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

afterEach(() => {
  for (const c of running.splice(0)) c.kill('SIGTERM');
});

describe('serve on Node', () => {
  it('HOST=127.0.0.1 listens there only; cf-ray does not choose the request id; a disconnecting client is one log line', async () => {
    const s = await serve({ HOST: '127.0.0.1' });
    expect(s.output()).toMatch(/"host":"127.0.0.1"/);
    expect((await get('127.0.0.1', s.port, '/healthz')).status).toBe(200);
    // all of 127/8 is loopback, but a socket bound to 127.0.0.1 answers that address only
    await expect(get('127.0.0.2', s.port, '/healthz')).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    const chosen = await get('127.0.0.1', s.port, '/v1/quarantine', {
      'cf-ray': 'chosen-by-the-client',
      authorization: 'Bearer nope-nope-nope-nope-nope',
    });
    expect(chosen.status).toBe(401);
    expect(chosen.headers['x-request-id']).not.toBe('chosen-by-the-client');
    expect(chosen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);

    // a form post whose client goes away before the body is complete
    const sock = connect(s.port, '127.0.0.1');
    sock.on('error', () => {});
    await new Promise((r) => sock.on('connect', r));
    sock.write(
      'POST /ui/sign-in HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 5000\r\n\r\ncsrf=abc',
    );
    await new Promise((r) => setTimeout(r, 300));
    sock.destroy();
    await vi.waitFor(() => expect(s.output()).toMatch(/client disconnected/), { timeout: 10_000 });
    const lines = s
      .output()
      .split('\n')
      .filter((l) => /client disconnected|aborted|unhandled/.test(l));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', msg: 'client disconnected', method: 'POST', path: '/ui/sign-in' });
    expect(s.output()).not.toMatch(/"stack"|\n\s+at /); // no stack, raw or in a JSON line
  });

  it('without HOST listens on every IPv4 address, as documented', async () => {
    const s = await serve({});
    expect(s.output()).toMatch(/"host":"0.0.0.0"/);
    expect((await get('127.0.0.2', s.port, '/healthz')).status).toBe(200);
  });
});
