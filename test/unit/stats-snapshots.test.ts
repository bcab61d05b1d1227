import { describe, expect, it } from 'vitest';
import { asOfText } from '../../src/ui/dashboard-pages.tsx';
import { snapshotScope } from '../../src/quarantine/stats-snapshots.ts';
import { parseConfig } from '../../src/config.ts';

const da = (domains: string[]) => ({ role: 'domain_admin' as const, actor: 'x', keyId: 'k', domains });

describe("the overview snapshots' scope", () => {
  it('is everything for an admin, one exact sorted domain set for a domain admin, none for an owner', () => {
    expect(snapshotScope({ role: 'admin', actor: 'x', keyId: null })).toEqual({ key: 'all', domains: [] });
    const ab = snapshotScope(da(['b.example', 'a.example', 'a.example']))!;
    expect(ab.domains).toEqual(['a.example', 'b.example']);
    expect(ab.key).toMatch(/^domains:[0-9a-f]{64}$/);
    expect(snapshotScope(da(['a.example', 'b.example']))!.key).toBe(ab.key);
    expect(snapshotScope(da(['a.example']))!.key).not.toBe(ab.key);
    // a domain list that reads like another set once joined is still another set
    expect(snapshotScope(da(['a.example,b.example']))!.key).not.toBe(ab.key);
    expect(snapshotScope({ role: 'user', actor: 'x', keyId: null, mailbox: 'u@a.example' })).toBeNull();
    // no domains is no scope (the job counts an empty list as everything)
    expect(snapshotScope(da([]))).toBeNull();
  });
  it('labels a snapshot with its UTC minute', () => {
    expect(asOfText(Date.parse('2026-12-04T14:05:59Z') / 1000)).toBe('2026-12-04 14:05 UTC');
  });
  it('STATS_SNAPSHOT_TIMEOUT_MS: default 300 s, bounded, named when wrong', () => {
    expect(parseConfig({}).STATS_SNAPSHOT_TIMEOUT_MS).toBe(300_000);
    expect(parseConfig({ STATS_SNAPSHOT_TIMEOUT_MS: '900000' }).STATS_SNAPSHOT_TIMEOUT_MS).toBe(900_000);
    expect(() => parseConfig({ STATS_SNAPSHOT_TIMEOUT_MS: '10' })).toThrow(/STATS_SNAPSHOT_TIMEOUT_MS/);
    expect(() => parseConfig({ STATS_SNAPSHOT_TIMEOUT_MS: 'soon' })).toThrow(/STATS_SNAPSHOT_TIMEOUT_MS/);
  });
});
