import { CHART_CSS } from './chart-css.ts';

/**
 * The pages' only stylesheet and script, served from /ui/static/ (CSP: style-src and script-src
 * 'self', nothing inline). The script is an enhancement: times in the reader's zone, "select all",
 * shift-click range select, the bulk bar shown once a row is ticked, focus on an action's result.
 * Without it every page works, with times in UTC.
 */
export const APP_CSS =
  `
:root { color-scheme: light dark; --fg: #1b1b1b; --bg: #fff; --muted: #5c5c5c; --line: #d0d0d0; --accent: #0b5cad; --bad: #a4161a; --ok: #1d6b32; --on-accent: #fff; }
@media (prefers-color-scheme: dark) { :root { --fg: #eee; --bg: #141414; --muted: #aaa; --line: #444; --accent: #7ab8ff; --bad: #ff8a8a; --ok: #8fd19e; --on-accent: #111; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header.top, main, footer { max-width: 72rem; margin: 0 auto; padding: 0.75rem 1rem; }
header.top { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: center; justify-content: space-between; border-bottom: 1px solid var(--line); }
header.top .brand { font-weight: 600; color: inherit; text-decoration: none; }
nav.main-nav { flex-basis: 100%; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; }
form.add { display: grid; grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr)); gap: 0.75rem; align-items: end; }
form.add input, form.add select { width: 100%; }
/* the digest settings: every menu as wide as the page, its help on the line under it (a phone shows it whole) */
form.settings select { width: 100%; max-width: 32rem; }
form.settings span.muted { display: block; }
/* the gateway form: one field per line, grouped in fieldsets (a Hyperdrive binding or a URL; AM.PDP or a relay) */
form.stacked label { display: block; }
form.stacked input, form.stacked textarea { width: 100%; max-width: 32rem; box-sizing: border-box; }
form.stacked fieldset { border: 1px solid var(--line); border-radius: 4px; margin: 0.75rem 0; max-width: 34rem; }
code.detail { font-size: 0.85rem; overflow-wrap: anywhere; white-space: pre-wrap; }
table.audit th { overflow-wrap: normal; }
@media (min-width: 40.01rem) { table.audit td.detail { width: 35%; } }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 1rem; top: 0.5rem; background: var(--bg); padding: 0.25rem 0.5rem; }
h1 { font-size: 1.5rem; margin: 0.5rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 0.5rem; }
label { display: block; font-weight: 600; font-size: 0.9rem; }
input, select, button { font: inherit; padding: 0.4rem 0.5rem; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); max-width: 100%; }
/* text on the accent: white on the light theme's dark blue, near-black on the dark theme's light blue (both >= 4.5:1) */
button { cursor: pointer; background: var(--accent); color: var(--on-accent); border-color: var(--accent); min-height: 24px; }
button.secondary { background: transparent; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
main.wide { max-width: none; }
/* The filter panel: always open on wide screens (no summary there), a fold on a phone. */
.filter-panel > summary { cursor: pointer; display: list-item; padding: 0.65rem 0.75rem; border: 1px solid var(--line); border-radius: 4px; margin-bottom: 0.5rem; font-weight: 600; }
@media (min-width: 40.01rem) { .filter-panel > summary { display: none; } }
.filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr)); gap: 0.5rem 0.75rem; align-items: end; margin-bottom: 0.75rem; }
.filters p { margin: 0; }
.filters input:not([type=checkbox]), .filters select { width: 100%; }
.filters details.types[open] { grid-column: 1 / -1; }
.filters summary { cursor: pointer; min-height: 24px; padding: 0.4rem 0.5rem; border: 1px solid var(--line); border-radius: 4px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.filters fieldset { display: grid; grid-template-columns: repeat(auto-fill, minmax(8rem, 1fr)); gap: 0.25rem 0.75rem; border: 1px solid var(--line); border-radius: 4px; margin: 0.25rem 0 0; }
.filters legend { font-weight: 600; font-size: 0.9rem; }
/* wraps: "Apply" and "Clear" in German or Russian are wider than one filter column on a phone */
.filters .apply { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
/* the bulk actions stay in reach while the list scrolls */
.bulkbar { position: sticky; top: 0; z-index: 2; background: var(--bg); margin: 0; padding: 0.5rem 0; border-bottom: 1px solid var(--line); align-items: center; }
.table-wrap { overflow-x: auto; }
table.list th, table.list td { overflow-wrap: normal; }
th.sortable a { display: inline-block; min-height: 24px; white-space: nowrap; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
table.list td.nowrap, table.list .num { white-space: nowrap; }
table.list .num, table.rules .num, table.attachments .num { text-align: right; white-space: nowrap; }
code.hash { font-size: 0.8rem; overflow-wrap: anywhere; }
table.rules { width: auto; min-width: 50%; }
.actions { display: flex; flex-wrap: wrap; gap: 0.5rem; margin: 0.75rem 0; }
.notice { border-left: 4px solid var(--ok); padding: 0.5rem 0.75rem; margin: 0 0 1rem; }
.notice.error { border-color: var(--bad); }
.muted { color: var(--muted); font-size: 0.9rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.4rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
td.sel, th.sel { width: 4.5rem; }
.badge { display: inline-block; padding: 0 0.4rem; border: 1px solid var(--line); border-radius: 999px; font-size: 0.8rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; } dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
pre.text { white-space: pre-wrap; overflow-wrap: anywhere; border: 1px solid var(--line); padding: 0.75rem; max-height: 60vh; overflow: auto; }
iframe.body { width: 100%; height: 60vh; border: 1px solid var(--line); background: #fff; }
.pager { display: flex; gap: 1rem; margin: 1rem 0; }
form.inline { display: inline; }
/* 24 px minimum targets for the links and boxes that stand alone (not links inside sentences) */
nav.main-nav a, .pager a, header.top .brand, a.button-link, td a, .result a { display: inline-block; min-height: 24px; line-height: 24px; }
input[type=checkbox] { width: 24px; height: 24px; margin: 0; vertical-align: middle; }
a.button-link { padding: 0.4rem 0.5rem; line-height: 1.5; }
.badge.bad { border-color: var(--bad); color: var(--bad); }
fieldset.danger-box { border: 2px solid var(--bad); border-radius: 4px; margin: 1rem 0; }
label.check { font-weight: 400; font-size: 1rem; }
.result h2 { margin: 0; font-size: 1rem; } .result ul { margin: 0.25rem 0 0; padding-left: 1.25rem; }
@media (max-width: 40rem) {
  table.list thead, table.attachments thead { position: absolute; left: -999px; }
  table.list tr, table.attachments tr { display: block; border-bottom: 1px solid var(--line); padding: 0.5rem 0; }
  table.list td, table.attachments td { display: block; border: 0; padding: 0.1rem 0.25rem; overflow-wrap: anywhere; }
  table.list .num, table.attachments .num { text-align: left; }
  table.list td[data-label]::before, table.attachments td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; }
  table.list thead a:focus { position: fixed; top: 0.5rem; left: 1rem; z-index: 3; background: var(--bg); padding: 0.25rem 0.5rem; }
  dl.meta { grid-template-columns: 1fr; }
}
` + CHART_CSS;

export const APP_JS = `
(function () {
  // in the page's language; a time already written in the owner's saved zone (data-zone) stays as it is
  var fmt;
  try { fmt = new Intl.DateTimeFormat(document.documentElement.lang || undefined, { dateStyle: 'medium', timeStyle: 'short' }); }
  catch (e) { fmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }); }
  document.querySelectorAll('time[datetime]:not([data-zone])').forEach(function (t) {
    var d = new Date(t.getAttribute('datetime'));
    if (!isNaN(d.getTime())) { t.title = t.getAttribute('datetime'); t.textContent = fmt.format(d); }
  });
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll('[data-tz]').forEach(function (e) {
    var words = e.getAttribute('data-tz') || 'Times are in your time zone ({zone}).';
    e.textContent = words.replace('{zone}', zone);
  });
  // The list's filters fold on a phone so the messages start on the first screen; wide again: open.
  var panel = document.getElementById('filter-panel');
  if (panel && window.matchMedia) {
    var narrow = window.matchMedia('(max-width: 40rem)');
    var fold = function () { panel.open = !narrow.matches; };
    fold();
    if (narrow.addEventListener) narrow.addEventListener('change', fold);
  }
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input[name=ids]'));
  var bar = document.getElementById('bulkbar');
  var count = document.getElementById('sel-count');
  // The action bar shows once a row is ticked (without this script it is always there).
  function update() {
    var n = boxes.filter(function (b) { return b.checked; }).length;
    if (bar) bar.hidden = n === 0;
    if (count) count.textContent = n ? (count.getAttribute('data-words') || '{n} selected').replace('{n}', n) : '';
  }
  var all = document.getElementById('select-all');
  if (all) {
    all.hidden = false;
    all.querySelector('input').addEventListener('change', function (e) {
      boxes.forEach(function (b) { b.checked = e.target.checked; });
      update();
    });
  }
  // Shift-click: every box between the last one clicked and this one takes this one's state.
  var last = null;
  boxes.forEach(function (b) {
    b.addEventListener('click', function (e) {
      if (e.shiftKey && last !== null && last !== b) {
        var i = boxes.indexOf(last), j = boxes.indexOf(b);
        boxes.slice(Math.min(i, j), Math.max(i, j) + 1).forEach(function (x) { x.checked = b.checked; });
      }
      last = b;
      update();
    });
    b.addEventListener('change', update);
  });
  update();
  // The result of the last action takes the focus (autofocus is not honoured after every navigation).
  var result = document.querySelector('.result[autofocus]');
  if (result) result.focus();
})();
`;
