// `quarantine-edge gateways`, the registry's form for small setups, on an embedded database kept in a
// directory (so migration 0019 runs on PGlite too): secrets come from a named environment variable
// and are never printed; bad input exits 2 before the database is opened; the key missing names
// GATEWAY_SECRETS_KEY; rekey moves what the previous key sealed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.ts';

const KEY_A = Buffer.alloc(32, 3).toString('base64');
const KEY_B = Buffer.alloc(32, 4).toString('base64');
const DB_URL = 'postgres://gw_user:gw-password-not-real@127.0.0.1:1/amavisd';

describe('quarantine-edge gateways', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qe-gw-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: `pglite://${dir}`, DB_MX1: DB_URL, ...extra });

  it('add, list, refuse, rekey, remove', async () => {
    const bad = await cli(['gateways', 'add', '--id', 'mx1', '--name', 'MX', '--domain', 'not a domain', '--hyperdrive', 'HD'], env());
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/gateways add: domains\.0: not a domain name/);

    const args = ['gateways', 'add', '--id', 'mx1', '--name', 'MX one', '--domain', 'Example.TEST', '--database-url-env', 'DB_MX1'];
    const noKey = await cli([...args, '--pdp', '127.0.0.1:9998'], env());
    expect(noKey.code).toBe(1);
    expect(noKey.err).toMatch(/GATEWAY_SECRETS_KEY/);

    const added = await cli([...args, '--pdp', '127.0.0.1:9998'], env({ GATEWAY_SECRETS_KEY: KEY_A }));
    expect(added.code, added.err).toBe(0);
    expect(added.out).toMatch(/^mx1\tMX one\texample\.test\turl\(sealed, key [0-9a-f]{8}\)\tpdp:127\.0\.0\.1:9998/);
    expect(added.out + added.err).not.toContain('gw-password-not-real');

    const listed = await cli(['gateways', 'list'], env({ GATEWAY_SECRETS_KEY: KEY_B, GATEWAY_SECRETS_PREVIOUS_KEYS: KEY_A }));
    expect(listed.code, listed.err).toBe(0);
    expect(listed.out).toContain('mx1\tMX one\texample.test');
    expect(listed.out).not.toContain('gw-password-not-real');
    const keyA = /key ([0-9a-f]{8})/.exec(listed.out)![1];

    const rekeyed = await cli(['gateways', 'rekey'], env({ GATEWAY_SECRETS_KEY: KEY_B, GATEWAY_SECRETS_PREVIOUS_KEYS: KEY_A }));
    expect(rekeyed.code, rekeyed.err).toBe(0);
    expect(rekeyed.out).toContain('sealed again: 1 (mx1)');
    const after = await cli(['gateways', 'list'], env({ GATEWAY_SECRETS_KEY: KEY_B }));
    const keyB = /key ([0-9a-f]{8})/.exec(after.out)![1];
    expect(keyB).not.toBe(keyA);

    expect((await cli(['gateways', 'remove', 'mx1'], env())).out).toContain('removed mx1');
    const gone = await cli(['gateways', 'remove', 'mx1'], env());
    expect(gone.code).toBe(1);
    expect(gone.err).toMatch(/no gateway with this id/);
  }, 300_000);
});
