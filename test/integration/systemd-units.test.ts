// The README's systemd units for the relay and the API, as written there: `systemd-analyze verify`
// accepts them, and their exact ExecStart, run the way systemd would (the unit's user, working
// directory, Environment= and EnvironmentFile=, no new privileges, nothing else in the
// environment), starts from a copy of the repository that user can read, and answers over HTTP.
// (No systemd runs here, so an unprivileged user stands in for User=quarantine-edge: nobody.)
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { freePort, startProcess } from '../support/cli.ts';
import { readmeBlock } from '../support/readme.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const REPO = new URL('../../', import.meta.url).pathname;
const RUN_AS = { user: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' };

/** [Service] of a unit: each key's values in order (Environment= may repeat). */
function serviceSection(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let inService = false;
  for (const line of unit.split('\n')) {
    const section = /^\[(.+)\]$/.exec(line.trim());
    if (section) inService = section[1] === 'Service';
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (inService && kv) out.set(kv[1]!, [...(out.get(kv[1]!) ?? []), kv[2]!]);
  }
  return out;
}

function envFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

describe("the README's systemd units", () => {
  let root: string;
  let copy: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'qe-units-'));
    chmodSync(root, 0o755);
    copy = join(root, 'opt-quarantine-edge');
    // the repository's files as an admin would have them in /opt/quarantine-edge (owned by root,
    // readable by all); node_modules is the checkout's own, which the unprivileged user can read
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f && !f.startsWith('node_modules/'));
    execFileSync('mkdir', ['-p', copy]);
    execFileSync('tar', ['-cf', join(root, 'repo.tar'), '-C', REPO, ...files]);
    execFileSync('tar', ['-xf', join(root, 'repo.tar'), '-C', copy, '--no-same-owner']);
    symlinkSync(join(REPO, 'node_modules'), join(copy, 'node_modules'));
    // what `npm ci` (its prepare script) leaves there: the compiled CLI the units then run
    execFileSync(process.execPath, [join(copy, 'scripts/build-cli.mjs')], { cwd: copy });
    execFileSync('chmod', ['-R', 'a+rX', copy]);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function runUnit(name: 'relay' | 'serve', secrets: Record<string, string>, overrides: Record<string, string>, probe: string) {
    const envPath = join(root, `${name}.env`);
    writeFileSync(
      envPath,
      Object.entries(secrets)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n') + '\n',
      { mode: 0o600 },
    );
    const unit = readmeBlock(`unit:${name}`)
      .replaceAll('/opt/quarantine-edge', copy)
      .replaceAll(`/etc/quarantine-edge/${name}.env`, envPath)
      .replace(/^User=.*$/m, `User=${RUN_AS.user}`)
      .replace(/^Group=.*$/m, 'Group=nogroup');
    const unitPath = join(root, `quarantine-edge-${name}.service`);
    writeFileSync(unitPath, unit);
    const verify = await new Promise<{ code: number; err: string }>((resolve) =>
      execFile('systemd-analyze', ['verify', unitPath], (err, _o, e) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, err: String(e) }),
      ),
    );
    expect(verify.code, verify.err).toBe(0);

    const s = serviceSection(unit);
    for (const hardening of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'ProtectHome=yes']) {
      const [k, v] = hardening.split('=');
      expect(s.get(k!), hardening).toEqual([v]);
    }
    const execStart = s.get('ExecStart')![0]!.split(/\s+/);
    expect(execStart[0]).toBe('/usr/bin/node');
    expect(execStart.slice(1)).toEqual([join(copy, 'bin/quarantine-edge.js'), name]);
    // the environment systemd gives a service: its own few variables, Environment=, EnvironmentFile=
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: RUN_AS.home,
      USER: RUN_AS.user,
      LOGNAME: RUN_AS.user,
    };
    for (const line of s.get('Environment') ?? [])
      for (const kv of line.split(/\s+/)) env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
    for (const f of s.get('EnvironmentFile') ?? []) Object.assign(env, envFile(f));
    Object.assign(env, overrides);
    const port = Number(overrides.PORT ?? overrides.RELAY_PORT);
    const running = await startProcess(
      [
        'setpriv',
        `--reuid=${RUN_AS.uid}`,
        `--regid=${RUN_AS.gid}`,
        '--clear-groups',
        '--no-new-privs',
        '--',
        process.execPath,
        ...execStart.slice(1),
      ],
      { env, port, cwd: s.get('WorkingDirectory')![0], ready: name === 'relay' ? /relay listening/ : /quarantine-edge listening/ },
    );
    try {
      const res = await fetch(`${running.base}${probe}`);
      return { status: res.status, body: await res.text(), output: running.output() };
    } finally {
      await running.stop();
    }
  }

  it('the relay unit starts as an unprivileged user and answers', async () => {
    const port = await freePort();
    const r = await runUnit('relay', { RELAY_SECRET: 'units-test-relay-secret-0123456789abcdef' }, { RELAY_PORT: String(port) }, '/');
    expect(r.status).toBeLessThan(500); // no signature: refused, but answered
    expect(r.output).toMatch(/"amavisd_pdp":"127\.0\.0\.1:9998"/);
  });

  it('the serve unit starts as an unprivileged user and answers /readyz', async () => {
    const port = await freePort();
    const r = await runUnit(
      'serve',
      { DATABASE_URL: inject('variantUrls')['pg-iredmail']!, ADMIN_API_KEY: 'units-test-admin-key-0123456789' },
      { PORT: String(port) },
      '/readyz',
    );
    expect(r.status, r.body).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ status: 'ready', schema_variant: 'pg-iredmail' });
  });
});
