import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.ts';
import { decodeCursor, encodeCursor } from '../../src/quarantine/cursor.ts';
import { MIGRATIONS, splitStatements } from '../../src/db/migrations.ts';
import { stripAmavisHeaders } from '../../src/quarantine/read.ts';
import { describeUrl } from '../../src/db/connect.ts';
import { outcomes } from '../../src/quarantine/release.ts';
import { retryOnDeadlock } from '../../src/db/errors.ts';

describe('configuration', () => {
  it('has defaults and parses lists', () => {
    const c = parseConfig({ BACKUP_MX_DOMAINS: 'a.example, B.example' });
    expect(c.PORT).toBe(8787);
    expect(c.RELAY_PORT).toBe(8788);
    expect(c.BACKUP_MX_DOMAINS).toEqual(['a.example', 'b.example']);
    expect(c.DIGEST_SUBJECT).toBeUndefined();
    expect(c.DIGEST_MAX_ITEMS).toBe(20);
  });
  it('names the bad variable and never echoes its value', () => {
    const secret = 'short-secret-value';
    try {
      parseConfig({ RELAY_URL: 'https://relay.example', RELAY_SECRET: secret, PORT: 'eighty', DATABASE_URL: 'sqlite://x' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/RELAY_SECRET/);
      expect(msg).toMatch(/PORT/);
      expect(msg).toMatch(/DATABASE_URL/);
      expect(msg).not.toContain(secret);
    }
    expect(() => parseConfig({ RELAY_URL: 'https://relay.example' })).toThrow(/RELAY_SECRET: is required/);
    expect(() => parseConfig({ AMAVISD_PDP: '127.0.0.1' })).toThrow(/AMAVISD_PDP/);
  });
});

describe('cursor', () => {
  it('round-trips and refuses any changed character', async () => {
    const sort = { key: 'received', order: 'desc' } as const;
    const c = await encodeCursor({ sort, p: 3, m: 'hZbBr1WxS3sy', v: 1790000000 });
    expect(await decodeCursor(c, sort)).toEqual({ sort, p: 3, m: 'hZbBr1WxS3sy', v: 1790000000 });
    for (let i = 0; i < c.length; i++) {
      if (c[i] === '.') continue;
      const changed = c.slice(0, i) + (c[i] === 'x' ? 'y' : 'x') + c.slice(i + 1);
      await expect(decodeCursor(changed, sort)).rejects.toMatchObject({ code: 'invalid_cursor' });
    }
    await expect(decodeCursor('', sort)).rejects.toMatchObject({ code: 'invalid_cursor' });
  });
});

describe('migrations', () => {
  it('lists exactly the files in migrations/<dialect>/', () => {
    for (const d of ['mysql', 'postgres']) {
      const files = readdirSync(new URL(`../../migrations/${d}/`, import.meta.url))
        .map((f) => f.replace(/\.sql$/, ''))
        .sort();
      expect(files).toEqual([...MIGRATIONS]);
    }
  });
  it('splits statements and drops comment lines', () => {
    expect(splitStatements('-- c;\nCREATE TABLE a (x int);\n\nCREATE INDEX i ON a (x);\n')).toEqual([
      'CREATE TABLE a (x int)',
      'CREATE INDEX i ON a (x)',
    ]);
  });
});

describe('database URL', () => {
  it('chooses the driver', () => {
    expect(describeUrl(undefined).driver).toBe('pglite');
    expect(describeUrl('pglite:///tmp/x').driver).toBe('pglite');
    expect(describeUrl('mysql://u:p@h/db').driver).toBe('mysql2');
    expect(describeUrl('postgres://u:p@h/db').driver).toBe('pg');
    expect(describeUrl('postgres://u:p@ep-x.eu-central-1.aws.neon.tech/db').driver).toBe('neon');
    expect(describeUrl('postgres://u:p@h/db?driver=neon').driver).toBe('neon');
  });
});

describe('stored message', () => {
  const enc = new TextEncoder();
  it("removes amavisd's leading lines, folded ones too, and keeps the rest byte-exact", () => {
    const body = 'Received: from x\nSubject: X-Quarantine-ID: <not ours>\n\nX-Envelope-To: <in body>\n';
    const stored =
      'X-Envelope-From: <a@example.net>\nX-Envelope-To: <b@example.com>,\n <c@example.org>\nX-Envelope-To-Blocked: <b@example.com>\nX-Quarantine-ID: <hZbBr1WxS3sy>\n' +
      body;
    expect(new TextDecoder().decode(stripAmavisHeaders(enc.encode(stored)))).toBe(body);
  });
});

describe('release outcomes', () => {
  const reply = (setreplies: string[], released: boolean) => ({ setreplies, attributes: [], released, via: 'direct' });
  it('maps one setreply per recipient and treats 2.5.0 as not released', () => {
    expect(
      outcomes(['a@x.example', 'b@x.example'], reply(['250 2.0.0 Ok', '250 2.5.0 No recipients, nothing to do'], false)).map(
        (o) => o.released,
      ),
    ).toEqual([true, false]);
  });
  it('applies the overall verdict when counts differ', () => {
    expect(outcomes(['a@x.example', 'b@x.example'], reply(['450 4.5.0 Failure: x'], false)).map((o) => o.released)).toEqual([false, false]);
  });
});

describe('deadlock retry', () => {
  it('runs a transaction again after a deadlock (MySQL 1213, PostgreSQL 40P01), never after another error', async () => {
    let calls = 0;
    const deadlockOnce = async () => {
      calls++;
      if (calls === 1) throw Object.assign(new Error('Deadlock found when trying to get lock'), { code: 'ER_LOCK_DEADLOCK', errno: 1213 });
      return 'committed';
    };
    expect(await retryOnDeadlock(deadlockOnce)).toBe('committed');
    expect(calls).toBe(2);

    calls = 0;
    const alwaysPg = async () => {
      calls++;
      throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
    };
    await expect(retryOnDeadlock(alwaysPg, 3)).rejects.toThrow('deadlock detected');
    expect(calls).toBe(3);

    calls = 0;
    const other = async () => {
      calls++;
      throw Object.assign(new Error('duplicate'), { code: 'ER_DUP_ENTRY' });
    };
    await expect(retryOnDeadlock(other)).rejects.toThrow('duplicate');
    expect(calls).toBe(1);
  });
});
