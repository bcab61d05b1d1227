/**
 * The overview's and the audit page's styles, appended to the pages' stylesheet (src/ui/assets.ts).
 * Each content type has a colour of at least 3:1 against the page in either theme
 * (test/unit/ui-charts.test.ts); the types are also named in the legend and the tables.
 */
export const TYPE_COLOURS = {
  light: {
    spam: '#b35900',
    spammy: '#8a6d00',
    virus: '#a4161a',
    banned: '#7b3fa0',
    'bad-header': '#0b5cad',
    'bad-mime': '#00796b',
    unchecked: '#5c5c5c',
    oversized: '#8b4513',
    'mta-error': '#ad1457',
    clean: '#2e7d32',
    other: '#546e7a',
  },
  dark: {
    spam: '#ffb366',
    spammy: '#e6c84d',
    virus: '#ff8a8a',
    banned: '#d0a0f0',
    'bad-header': '#7ab8ff',
    'bad-mime': '#4dd0c0',
    unchecked: '#bbbbbb',
    oversized: '#e0a070',
    'mta-error': '#ff80b0',
    clean: '#8fd19e',
    other: '#a0b8c8',
  },
} as const;

const fills = (scheme: 'light' | 'dark') =>
  Object.entries(TYPE_COLOURS[scheme])
    .map(([t, c]) => `.t-${t} { fill: ${c}; }`)
    .join(' ');

export const CHART_CSS = `
${fills('light')}
@media (prefers-color-scheme: dark) { ${fills('dark')} }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
svg.swatch { width: 0.9em; height: 0.9em; vertical-align: -0.1em; }
ul.legend { list-style: none; padding: 0; margin: 0.5rem 0; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; }
.daychart { display: grid; grid-template-columns: auto minmax(0, 1fr); grid-template-rows: 12rem auto; column-gap: 0.5rem; margin: 0.5rem 0 1rem; }
.daychart .yaxis { grid-row: 1; grid-column: 1; display: flex; flex-direction: column; justify-content: space-between; text-align: right; font-size: 0.8rem; line-height: 1; color: var(--muted); }
.daychart svg.bars { grid-row: 1; grid-column: 2; width: 100%; height: 100%; display: block; }
.daychart line.grid { stroke: var(--line); stroke-width: 1; }
.daychart line.axis { stroke: var(--muted); stroke-width: 1; }
.daychart .xaxis { grid-row: 2; grid-column: 2; display: flex; overflow: hidden; font-size: 0.8rem; color: var(--muted); padding-top: 0.2rem; }
.daychart .xaxis span { flex: 1 1 0; min-width: 0; white-space: nowrap; overflow: visible; }
.daychart .xaxis span:last-child { display: flex; justify-content: flex-end; }
ul.tiles { list-style: none; padding: 0; margin: 0.5rem 0; display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: 0.75rem; }
ul.tiles li { border: 1px solid var(--line); border-radius: 4px; padding: 0.5rem 0.75rem; }
ul.tiles a { display: block; text-decoration: none; }
ul.tiles .tile-n { display: block; font-size: 1.5rem; font-weight: 600; }
ul.tiles .tile-label { text-decoration: underline; }
caption { text-align: left; color: var(--muted); font-size: 0.9rem; padding: 0.25rem 0; }
table.numbers .num, table.bars .num { text-align: right; white-space: nowrap; }
table.numbers th, table.numbers td { overflow-wrap: normal; white-space: nowrap; }
table.bars td.bar { width: 40%; vertical-align: middle; }
table.bars td.bar svg { display: block; width: 100%; height: 0.9rem; }
table.bars .hbar { fill: var(--accent); }
.zone-form { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; margin: 0 0 1rem; }
.zone-form label { display: inline; }
details > summary { cursor: pointer; min-height: 24px; }
table.audit ul.detail { margin: 0.25rem 0 0; padding-left: 1.1rem; font-size: 0.85rem; overflow-wrap: anywhere; }
table.audit td.outcome { min-width: 14rem; }
/* wide: an address or subject keeps its column's width rather than breaking mid-word (stacked on a phone it may) */
@media (min-width: 40.01rem) { table.audit td { overflow-wrap: break-word; } }
table.bars td.label { overflow-wrap: break-word; }
@media (max-width: 40rem) { table.bars td.bar { width: 22%; } ul.tiles { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
@media (max-width: 40rem) { table.audit td.outcome { min-width: 0; } }
@media (min-width: 60rem) { .two-col { display: grid; grid-template-columns: 1fr 1fr; gap: 0 2rem; } }
`;
