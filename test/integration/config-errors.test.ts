// 15.20 on Node: a configuration `serve` cannot run with stops the start, once, naming the variables.
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const BIN = new URL('../../bin/quarantine-edge.js', import.meta.url).pathname;
const SHORT = 'only-twenty-chars-xx';
const ours = /^(DATABASE_URL|ADMIN_API_KEY|AMAVISD_PDP|RELAY_|PORT|RESEND_|SMTP_URL|DIGEST_|PUBLIC_URL|LINK_SECRET|BACKUP_MX_DOMAINS)/;
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !ours.test(k)));

function serve(env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'serve'], { env: { ...cleanEnv(), ...env }, timeout: 60_000 }, (err, out, errOut) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: String(out), err: String(errOut) }),
    );
  });
}

describe('serve with a configuration it cannot run with', () => {
  it('exits 2 before opening anything, naming each bad variable once and never its value', async () => {
    const r = await serve({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', LINK_SECRET: SHORT, RELAY_URL: 'not a url' });
    expect(r.code).toBe(2);
    expect(r.err).toContain('LINK_SECRET: must be at least 32 characters');
    expect(r.err.match(/LINK_SECRET/g)).toHaveLength(1);
    expect(r.err).toMatch(/RELAY_URL: /);
    expect(r.err + r.out).not.toContain(SHORT);
    expect(r.out).not.toMatch(/listening/);
  });
});
