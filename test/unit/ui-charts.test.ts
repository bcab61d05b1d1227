// The overview's pieces that need no database: each content type's colour against the page (3:1 for
// graphics, light and dark), the chart's top, zone offsets across a DST change, the 30-day window.
import { describe, expect, it } from 'vitest';
import { CONTENT_TYPE_NAMES } from '../../src/amavis/codes.ts';
import { TYPE_COLOURS } from '../../src/ui/chart-css.ts';
import { niceMax } from '../../src/ui/charts.tsx';
import { dashboardWindow } from '../../src/ui/dashboard-routes.tsx';
import { offsetAt, offsetSegments } from '../../src/quarantine/zone-days.ts';

const lum = (hex: string) =>
  [1, 3, 5]
    .map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
    .reduce((a, c, i) => a + [0.2126, 0.7152, 0.0722][i]! * c, 0);
const contrast = (a: string, b: string) => {
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x! + 0.05) / (y! + 0.05);
};

describe('the overview', () => {
  it.each([
    ['light', '#ffffff'],
    ['dark', '#141414'],
  ] as const)('every type has a colour of at least 3:1 against the %s page', (scheme, bg) => {
    for (const t of CONTENT_TYPE_NAMES) expect(contrast(TYPE_COLOURS[scheme][t], bg), `${scheme} ${t}`).toBeGreaterThanOrEqual(3);
  });

  it('tops the chart at 1, 2 or 5 times a power of ten', () => {
    expect([0, 1, 3, 10, 11, 26, 49, 50, 51, 999].map(niceMax)).toEqual([1, 1, 5, 10, 20, 50, 50, 50, 100, 1000]);
  });

  it("finds a zone's offset change to the second", () => {
    const since = Date.parse('2026-10-25T00:00:00Z') / 1000;
    const until = Date.parse('2026-11-05T00:00:00Z') / 1000;
    expect(offsetSegments('America/New_York', since, until)).toEqual([
      { from: since, offset: -4 * 3600 },
      { from: Date.parse('2026-11-01T06:00:00Z') / 1000, offset: -5 * 3600 },
    ]);
    expect(offsetSegments('Asia/Kolkata', since, until)).toEqual([{ from: since, offset: 5.5 * 3600 }]);
    expect(offsetAt('UTC', since)).toBe(0);
  });

  it('is 30 whole days ending today, from local midnight', () => {
    const now = Date.parse('2026-12-04T15:00:00Z') / 1000;
    const utc = dashboardWindow(now, 'UTC');
    expect([utc.since, utc.until]).toEqual([Date.parse('2026-11-05T00:00:00Z') / 1000, now + 1]);
    expect(utc.last - utc.first).toBe(29);
    // Tokyo: already 5 December there
    expect(dashboardWindow(now, 'Asia/Tokyo').since).toBe(Date.parse('2026-11-05T15:00:00Z') / 1000);
  });
});
