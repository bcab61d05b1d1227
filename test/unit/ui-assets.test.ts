// The stylesheet's colours, checked as WCAG 2 computes contrast: every button's text against its
// background, in the light and the dark theme, at least 4.5:1.
import { describe, expect, it } from 'vitest';
import { APP_CSS } from '../../src/ui/assets.ts';

function vars(block: string): Record<string, string> {
  return Object.fromEntries([...block.matchAll(/--([a-z-]+):\s*(#[0-9a-f]{3,6})/gi)].map((m) => [m[1]!, m[2]!]));
}

function luminance(hex: string): number {
  const h =
    hex.length === 4
      ? hex
          .slice(1)
          .split('')
          .map((c) => c + c)
          .join('')
      : hex.slice(1);
  const [r, g, b] = [0, 2, 4]
    .map((i) => parseInt(h.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

const contrast = (a: string, b: string) => {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x! + 0.05) / (y! + 0.05);
};

describe('page colours', () => {
  const light = vars(/:root \{([^}]*)\}/.exec(APP_CSS)![1]!);
  const dark = { ...light, ...vars(/prefers-color-scheme: dark\) \{ :root \{([^}]*)\}/.exec(APP_CSS)![1]!) };

  it.each([
    ['light', light],
    ['dark', dark],
  ] as const)('%s theme: button text, danger buttons, links and muted text reach 4.5:1', (_, v) => {
    expect(APP_CSS).toMatch(/button \{[^}]*color: var\(--on-accent\)/);
    expect(contrast(v['on-accent']!, v.accent!)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(v['on-accent']!, v.bad!)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(v.accent!, v.bg!)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(v.muted!, v.bg!)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(v.fg!, v.bg!)).toBeGreaterThanOrEqual(4.5);
  });

  it('stand-alone links and checkboxes are at least 24 px', () => {
    expect(APP_CSS).toMatch(/nav\.main-nav a, \.pager a[^{]*\{[^}]*min-height: 24px/);
    expect(APP_CSS).toMatch(/input\[type=checkbox\] \{ width: 24px; height: 24px;/);
  });
});
