import { readFileSync } from 'node:fs';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { CRON_TABLE, isKnownTrigger, jobsFor, scheduleOf } from '../../src/jobs/cron.ts';
import { parseConfig } from '../../src/config.ts';

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
  it('runs the purge only when PURGE_SCHEDULE is set: at that expression on Node, at the trigger it names on Workers', () => {
    const purge = CRON_TABLE.find((j) => j.name === 'purge')!;
    const off = parseConfig({});
    expect(off.PURGE_SCHEDULE).toBeUndefined();
    expect(scheduleOf(purge, off)).toBeNull();
    expect(jobsFor('17 3 * * *', off)).toEqual([]);
    expect(isKnownTrigger('17 3 * * *')).toBe(true);
    const on = parseConfig({ PURGE_SCHEDULE: ' 17  3 * * * ' });
    expect(scheduleOf(purge, on)).toBe('17 3 * * *');
    expect(jobsFor('17 3 * * *', on).map((j) => j.name)).toEqual(['purge']);
    const other = parseConfig({ PURGE_SCHEDULE: '0 4 * * 0' });
    expect(scheduleOf(purge, other)).toBe('0 4 * * 0');
    expect(jobsFor('17 3 * * *', other)).toEqual([]);
    // the other jobs do not depend on it
    expect(jobsFor('*/15 * * * *', off).map((j) => j.name)).toEqual(['digest', 'admin-digest']);
    expect(() => parseConfig({ PURGE_SCHEDULE: 'nightly' })).toThrow(/PURGE_SCHEDULE: expected a five-field cron expression/);
  });
});
