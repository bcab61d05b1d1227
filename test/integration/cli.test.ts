// The CLI as an admin runs it from a fresh clone: bin/quarantine-edge.js, no build step.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it, vi } from 'vitest';
import { sql } from 'kysely';
import { createVariantDatabase, dropVariantDatabase, openVariant, VARIANTS } from '../support/databases.ts';
import { checkRecommendedIndexes } from '../../src/db/recommended-indexes.ts';
import { BIN, cleanEnv, cli, freePort } from '../support/cli.ts';

vi.setConfig({ testTimeout: 120_000 });

/** `serve` on a free port until its output matches `until` (or 30 s); then stopped. Returns its output. */
async function serveUntil(env: Record<string, string>, until: RegExp): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'serve'], { env: { ...cleanEnv(), ...env, PORT: String(port) } });
  let out = '';
  try {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 30_000);
      const take = (b: Buffer) => {
        out += String(b);
        if (until.test(out)) clearTimeout(timer), resolve();
      };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
      child.on('exit', () => (clearTimeout(timer), resolve()));
    });
  } finally {
    child.kill('SIGTERM');
  }
  return out;
}

describe('quarantine-edge CLI', () => {
  it('prints usage, and refuses bad configuration naming the variable', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/serve.*\n.*demo/s);
    const bad = await cli(['serve'], { PORT: 'eighty', ADMIN_API_KEY: 'hunter2' });
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/PORT/);
    expect(bad.err).toMatch(/ADMIN_API_KEY: must be at least 24 characters/);
    expect(bad.err).not.toContain('hunter2');
    expect((await cli(['migrate'])).code).toBe(2);
  });

  it('an unknown command says so and exits 2; no command prints usage and exits 2', async () => {
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/^quarantine-edge: unknown command "frobnicate"\n/);
    expect(unknown.err).toMatch(/usage: quarantine-edge <command>/);
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/^usage: quarantine-edge <command>/);
    expect((await cli(['help'])).code).toBe(0);
    expect((await cli(['toString'])).err).toMatch(/unknown command "toString"/);
  });

  it('without DATABASE_URL only demo may run (on the embedded database): the others refuse, naming it; pglite://PATH is allowed', async () => {
    for (const args of [
      ['serve'],
      ['keys', 'create', '--name', 'k', '--role', 'admin'],
      ['keys', 'list'],
      ['notify'],
      ['purge'],
      ['migrate'],
      ['release', '0.AAAAAAAAAAAA'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(/DATABASE_URL is not set/);
      expect(r.out, args.join(' ')).not.toMatch(/qe_/); // no key printed that exists nowhere
    }
    // an embedded database asked for by name keeps what was written
    const dir = mkdtempSync(join(tmpdir(), 'qe-pglite-'));
    try {
      const env = { DATABASE_URL: `pglite://${dir}` };
      const created = await cli(['keys', 'create', '--name', 'kept', '--role', 'admin'], env);
      expect(created.code, created.err).toBe(0);
      const id = created.out.split('\t')[0]!;
      expect((await cli(['keys', 'list'], env)).out).toContain(`${id}\tadmin\tkept`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keys create refuses what the API refuses: a user key without --mailbox, a domain_admin key without --domain', async () => {
    const env = { DATABASE_URL: inject('variantUrls')['pg-iredmail']! };
    const name = `unusable-${process.pid}`;
    const user = await cli(['keys', 'create', '--name', name, '--role', 'user'], env);
    expect(user.code).toBe(2);
    expect(user.err).toMatch(/keys create: mailbox: required for role user/);
    const dadmin = await cli(['keys', 'create', '--name', name, '--role', 'domain_admin'], env);
    expect(dadmin.code).toBe(2);
    expect(dadmin.err).toMatch(/keys create: domains: required for role domain_admin/);
    const bad = await cli(['keys', 'create', '--name', name, '--role', 'user', '--mailbox', 'not an address'], env);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/mailbox: not an email address/);
    expect((await cli(['keys', 'list'], env)).out).not.toContain(name);
    const ok = await cli(['keys', 'create', '--name', name, '--role', 'user', '--mailbox', 'Alice@Example.com'], env);
    expect(ok.code, ok.err).toBe(0);
    expect((await cli(['keys', 'list'], env)).out).toMatch(new RegExp(`\\tuser\\t${name}\\talice@example.com\\tactive\\t\\n`));
    // a decider's address: validated as the API does, refused for a user key, listed last
    const userNotify = await cli(
      ['keys', 'create', '--name', name, '--role', 'user', '--mailbox', 'b@example.com', '--notify-email', 'b@example.com'],
      env,
    );
    expect(userNotify.code).toBe(2);
    expect(userNotify.err).toMatch(/notify_email: only for roles admin and domain_admin/);
    const badNotify = await cli(['keys', 'create', '--name', name, '--role', 'admin', '--notify-email', 'nobody'], env);
    expect(badNotify.code).toBe(2);
    expect(badNotify.err).toMatch(/notify_email: /);
    const decider = await cli(
      ['keys', 'create', '--name', `${name}-d`, '--role', 'domain_admin', '--domain', 'example.com', '--notify-email', 'IT@Example.com'],
      env,
    );
    expect(decider.code, decider.err).toBe(0);
    expect((await cli(['keys', 'list'], env)).out).toMatch(
      new RegExp(`\\tdomain_admin\\t${name}-d\\texample.com\\tactive\\tit@example.com\\n`),
    );
  });

  it.each(['mysql-upstream', 'pg-iredmail'] as const)(
    'on %s: serve names the migrate command until migrate has run; keys work',
    async (variant) => {
      const suffix = `${inject('runSuffix')}c`;
      const url = await createVariantDatabase(variant, { suffix, migrate: false });
      const env = { DATABASE_URL: url };
      const before = await cli(['keys', 'list'], env);
      expect(before.code).toBe(1);
      expect(before.err).toMatch(/run `quarantine-edge migrate`/);
      const mig = await cli(['migrate'], env);
      expect(mig.code, mig.err).toBe(0);
      expect(mig.out).toMatch(new RegExp(`amavisd schema: ${variant}`));
      expect(mig.out).toMatch(/applied: 0001_init, 0002_idempotency/);
      expect((await cli(['migrate'], env)).out).toMatch(/already up to date/);
      const created = await cli(['keys', 'create', '--name', 'helpdesk', '--role', 'domain_admin', '--domain', 'example.com'], env);
      expect(created.code, created.err).toBe(0);
      const [id, key] = created.out.split('\n')[0]!.split('\t');
      expect(key).toMatch(/^qe_/);
      const listed = await cli(['keys', 'list'], env);
      expect(listed.out).toContain(`${id}\tdomain_admin\thelpdesk\texample.com\tactive`);
      expect(listed.out).not.toContain(key);
      expect((await cli(['keys', 'revoke', id!], env)).code).toBe(0);
      const rel = await cli(['release', '0.AAAAAAAAAAAA'], env);
      expect(rel.code).toBe(1);
      expect(rel.err).toMatch(/release: (no quarantined message|set AMAVISD_PDP)/);
      await dropVariantDatabase(variant, { suffix });
    },
  );
});

describe('quarantine-edge migrate --recommended-indexes', () => {
  it.each(VARIANTS)(
    "on %s: --dry-run creates nothing; the run creates what is missing, once; amavisd's own indexes count",
    async (variant) => {
      const suffix = `${inject('runSuffix')}x`;
      const url = await createVariantDatabase(variant, { suffix });
      const env = { DATABASE_URL: url };
      const handle = await openVariant(variant, 1, { suffix });
      try {
        const served = async () =>
          Object.fromEntries((await checkRecommendedIndexes(handle.db, handle.dialect)).map((s) => [s.index.name, s.servedBy]));
        const iredmail = variant.endsWith('iredmail');
        // iRedMail's schema has maddr_idx_domain and maddr_idx_email; upstream has neither
        // iRedMail's MySQL schema has msgs_idx_spam_level (InnoDB appends the key); PostgreSQL's lacks NULLS FIRST and the key
        const spamLevel = variant === 'mysql-iredmail' ? 'msgs_idx_spam_level' : '';
        // every schema has msgs_idx_sid (sid); only InnoDB's carries the key the sender walk orders by
        const mysql = variant.startsWith('mysql');
        expect(await served()).toEqual({
          qe_msgrcpt_rid_rs: '',
          qe_maddr_domain: iredmail ? 'maddr_idx_domain' : '',
          qe_maddr_email: iredmail ? 'maddr_idx_email' : '',
          qe_msgs_spam_level: spamLevel,
          qe_msgs_subject: '',
          qe_msgs_sid: mysql ? 'msgs_idx_sid' : '',
        });
        if (variant === 'pg-upstream') {
          // an interrupted CONCURRENTLY build leaves an invalid index that holds the name: make one
          await sql
            .raw("INSERT INTO maddr (partition_tag, email, domain) VALUES (0, 'a@x.example', 'example.x'), (0, 'b@x.example', 'example.x')")
            .execute(handle.db);
          await expect(sql.raw('CREATE UNIQUE INDEX CONCURRENTLY qe_maddr_domain ON maddr (domain)').execute(handle.db)).rejects.toThrow();
          expect((await served()).qe_maddr_domain).toBe('');
          // the order counts: NULLS LAST does not serve the subject order (NULL lowest); the same
          // order read backwards (DESC NULLS LAST, the rest DESC) does
          await sql.raw('CREATE INDEX test_subject_nulls_last ON msgs (subject, partition_tag, mail_id)').execute(handle.db);
          expect((await served()).qe_msgs_subject).toBe('');
          await sql
            .raw('CREATE INDEX test_subject_backward ON msgs (subject DESC NULLS LAST, partition_tag DESC, mail_id DESC)')
            .execute(handle.db);
          expect((await served()).qe_msgs_subject).toBe('test_subject_backward');
          await sql.raw('DROP INDEX test_subject_nulls_last, test_subject_backward').execute(handle.db);
        }

        // serve names what is missing at start, once, and creates nothing
        const hint = /optional indexes for large quarantines are missing.*"missing":\["qe_msgrcpt_rid_rs"/;
        expect(await serveUntil(env, hint)).toMatch(hint);

        const dry = await cli(['migrate', '--recommended-indexes', '--dry-run'], env);
        expect(dry.code, dry.err).toBe(0);
        expect(dry.out).toMatch(/missing {2}qe_msgrcpt_rid_rs/);
        expect(dry.out).toMatch(/dry run: nothing created/);
        expect((await served()).qe_msgrcpt_rid_rs).toBe('');

        const run = await cli(['migrate', '--recommended-indexes'], env);
        expect(run.code, run.err).toBe(0);
        const created = [
          'qe_msgrcpt_rid_rs',
          ...(iredmail ? [] : ['qe_maddr_domain', 'qe_maddr_email']),
          ...(spamLevel ? [] : ['qe_msgs_spam_level']),
          'qe_msgs_subject',
          ...(mysql ? [] : ['qe_msgs_sid']),
        ];
        expect(run.out).toContain(`created: ${created.join(', ')}\n`);
        expect(await served()).toEqual({
          qe_msgrcpt_rid_rs: 'qe_msgrcpt_rid_rs',
          qe_maddr_domain: iredmail ? 'maddr_idx_domain' : 'qe_maddr_domain',
          qe_maddr_email: iredmail ? 'maddr_idx_email' : 'qe_maddr_email',
          qe_msgs_spam_level: spamLevel || 'qe_msgs_spam_level',
          qe_msgs_subject: 'qe_msgs_subject',
          qe_msgs_sid: mysql ? 'msgs_idx_sid' : 'qe_msgs_sid',
        });
        expect((await cli(['migrate', '--recommended-indexes'], env)).out).toMatch(/nothing to create/);
        const quiet = await serveUntil(env, /quarantine-edge listening/);
        expect(quiet).toMatch(/quarantine-edge listening/);
        expect(quiet).not.toMatch(/optional indexes/);
      } finally {
        await handle.close();
        await dropVariantDatabase(variant, { suffix });
      }
    },
  );
});
