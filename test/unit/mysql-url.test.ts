import { afterEach, describe, expect, it, vi } from 'vitest';
import { openDatabase } from '../../src/db/connect.ts';
import { mysqlTarget } from '../../src/db/mysql-url.ts';

const BASE = 'mysql://qe:pw@127.0.0.1:3306/amavisd';

describe("MySQL's ssl-mode parameter (workerd appends it to Hyperdrive's connection string)", () => {
  afterEach(() => vi.restoreAllMocks());

  it("is taken out of the URL, and maps to mysql2's ssl option", () => {
    expect(mysqlTarget(BASE)).toEqual({ uri: BASE });
    expect(mysqlTarget(`${BASE}?ssl-mode=DISABLED`)).toEqual({ uri: BASE });
    expect(mysqlTarget(`${BASE}?ssl-mode=preferred`)).toEqual({ uri: BASE });
    expect(mysqlTarget(`${BASE}?ssl-mode=REQUIRED&charset=utf8mb4`)).toEqual({
      uri: `${BASE}?charset=utf8mb4`,
      ssl: { rejectUnauthorized: false },
    });
    expect(mysqlTarget(`${BASE}?ssl-mode=VERIFY_CA`)).toEqual({ uri: BASE, ssl: { rejectUnauthorized: true } });
    expect(mysqlTarget(`${BASE}?ssl-mode=VERIFY_IDENTITY`)).toEqual({ uri: BASE, ssl: { rejectUnauthorized: true } });
    // Hyperdrive speaks TLS to the origin itself: whatever the binding says is dropped
    expect(mysqlTarget(`${BASE}?ssl-mode=REQUIRED`, { hyperdrive: true })).toEqual({ uri: BASE });
    expect(() => mysqlTarget(`${BASE}?ssl-mode=sometimes`)).toThrow(/ssl-mode must be one of DISABLED, PREFERRED, REQUIRED/);
  });

  it('reaches mysql2 without its "Ignoring invalid configuration option" warning', async () => {
    const said = vi.spyOn(console, 'error').mockImplementation(() => {});
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => {});
    for (const [url, hyperdrive] of [
      [`${BASE}?ssl-mode=DISABLED`, true],
      [`${BASE}?ssl-mode=REQUIRED`, false],
    ] as const) {
      const h = await openDatabase({ url, runtime: 'worker', poolSize: 1, hyperdrive });
      await h.close();
    }
    const lines = [...said.mock.calls, ...warned.mock.calls].map((c) => String(c[0]));
    expect(lines.filter((l) => /invalid configuration option/.test(l))).toEqual([]);
  });
});
