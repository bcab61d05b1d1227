import { readFileSync } from 'node:fs';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { CRON_TABLE } from '../../src/jobs/cron.ts';

describe('the cron table', () => {
  it('is exactly what wrangler.toml schedules', () => {
    const toml = parse(readFileSync(new URL('../../wrangler.toml', import.meta.url), 'utf8')) as { triggers?: { crons?: string[] } };
    const scheduled = [...(toml.triggers?.crons ?? [])].sort();
    expect(scheduled).toEqual([...new Set(CRON_TABLE.map((j) => j.cron))].sort());
  });
  it('has unique job names and valid five-field expressions', () => {
    expect(new Set(CRON_TABLE.map((j) => j.name)).size).toBe(CRON_TABLE.length);
    for (const j of CRON_TABLE) expect(j.cron.split(/\s+/)).toHaveLength(5);
  });
});
