// bin/quarantine-edge.js runs the build in dist/cli/ (scripts/build-cli.mjs, `npm ci`'s prepare)
// only while every file it was built from is unchanged; otherwise the TypeScript through tsx.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cleanEnv } from '../support/cli.ts';

vi.setConfig({ testTimeout: 120_000 });

const REPO = new URL('../../', import.meta.url).pathname;

function run(copy: string, args: string[], env: Record<string, string> = {}): string {
  try {
    return execFileSync(process.execPath, [join(copy, 'bin/quarantine-edge.js'), ...args], {
      env: { ...cleanEnv(), ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
}

describe('the compiled CLI', () => {
  let copy: string;
  beforeAll(() => {
    copy = mkdtempSync(join(tmpdir(), 'qe-cli-build-'));
    for (const dir of ['bin', 'functions', 'src', 'templates', 'migrations', 'fixtures', 'scripts']) {
      cpSync(join(REPO, dir), join(copy, dir), { recursive: true });
    }
    for (const file of ['package.json', 'tsconfig.json']) cpSync(join(REPO, file), join(copy, file));
    // the checkout's packages but tsx: until the second test links it, only the build can run
    mkdirSync(join(copy, 'node_modules'));
    for (const name of readdirSync(join(REPO, 'node_modules'))) {
      if (name !== 'tsx') symlinkSync(join(REPO, 'node_modules', name), join(copy, 'node_modules', name));
    }
    execFileSync(process.execPath, [join(copy, 'scripts/build-cli.mjs')], { cwd: copy });
  });
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  it('runs a command from the build (tsx is not installed), finding its files from their source location', () => {
    const inputs = JSON.parse(readFileSync(join(copy, 'dist/cli/inputs.json'), 'utf8')) as string[];
    expect(inputs).toContain('functions/cli.ts');
    expect(inputs).toContain('src/db/drivers/files.ts');
    // the build itself, end to end: the usage (a file next to functions/cli.ts) and the config parser
    expect(run(copy, ['no-such-command'])).toMatch(/unknown command "no-such-command"[\s\S]*serve/);
    expect(run(copy, ['keys', 'list'])).toMatch(/DATABASE_URL is not set/);
    // and the migrations (found through src/db/drivers/files.ts) on an embedded database
    const db = join(copy, 'pglite-db');
    expect(run(copy, ['migrate', '--without-amavisd'], { DATABASE_URL: `pglite://${db}` })).toMatch(
      /^applied: 0001_init, 0002_idempotency,/m,
    );
  });

  it('uses the build while its inputs are unchanged, and tsx as soon as one is newer', () => {
    symlinkSync(join(REPO, 'node_modules/tsx'), join(copy, 'node_modules/tsx'));
    const entry = join(copy, 'dist/cli/cli.mjs');
    const original = readFileSync(entry, 'utf8');
    try {
      // a marker in place of the build's entry, as new as the build: the bin runs it
      writeFileSync(entry, 'console.log("ran the build");\n');
      expect(run(copy, ['keys', 'list'])).toBe('ran the build\n');
      // a source file edited after the build: the bin compiles the checkout instead
      const later = new Date(Date.now() + 60_000);
      utimesSync(join(copy, 'src/config.ts'), later, later);
      expect(run(copy, ['keys', 'list'])).toMatch(/DATABASE_URL is not set/);
      // and QE_CLI_TSX=1 always does
      const newer = new Date(Date.now() + 120_000);
      utimesSync(entry, newer, newer);
      expect(run(copy, ['keys', 'list'])).toBe('ran the build\n');
      expect(run(copy, ['keys', 'list'], { QE_CLI_TSX: '1' })).toMatch(/DATABASE_URL is not set/);
    } finally {
      writeFileSync(entry, original);
    }
  });
});
