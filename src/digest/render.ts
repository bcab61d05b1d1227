import { renderCompiled } from './compiled-template.ts';
import { cutText, decodePerlEscapes } from '../amavis/alert-text.ts';
import { DEFAULT_TEMPLATES, type TemplateName } from './templates.generated.ts';

/**
 * Mustache rendering of the digest and the action pages. Subjects and senders are written by
 * whoever sent the spam, so HTML templates escape every {{value}}; values are data, never
 * templates (mustache does not re-render them, so a subject "{{total}}" stays literal).
 */
export type Templates = Record<TemplateName, string> & { byLanguage?: Record<string, Partial<Record<TemplateName, string>>> };
/** `byLanguage.de['digest.html']`: templates/digest.de.custom.html, German readers only */
export type TemplateOverrides = Partial<Templates>;

/** `own` over `base` (a gateway's templates over the deployment's), per language too. */
export function overridesOver(base: TemplateOverrides | undefined, own: TemplateOverrides | undefined): TemplateOverrides | undefined {
  if (!own) return base;
  if (!base) return own;
  const byLanguage: NonNullable<TemplateOverrides['byLanguage']> = { ...base.byLanguage };
  for (const [lang, t] of Object.entries(own.byLanguage ?? {})) byLanguage[lang] = { ...byLanguage[lang], ...t };
  return { ...base, ...own, byLanguage };
}

export function templatesWith(overrides: TemplateOverrides | undefined): Templates {
  return { ...DEFAULT_TEMPLATES, ...(overrides ?? {}) };
}

/** The template for a reader of this language: its own .custom one, else the general one (custom or default). */
export function templateFor(templates: Templates, name: TemplateName, language: string): string {
  return templates.byLanguage?.[language]?.[name] ?? templates[name];
}

// mustache caches parsed templates by their text; the set is small (defaults + overrides).
const noEscape = (s: unknown) => String(s);

/**
 * mustache's own escaping (the same eight characters, the same entities: `&<>"'\`=/`), without a
 * regex callback per character: a digest escapes tens of kilobytes, most of it in its links.
 */
export function escapeHtml(value: unknown): string {
  const s = String(value);
  let out = '';
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    let e: string;
    switch (s.charCodeAt(i)) {
      case 38:
        e = '&amp;';
        break;
      case 60:
        e = '&lt;';
        break;
      case 62:
        e = '&gt;';
        break;
      case 34:
        e = '&quot;';
        break;
      case 39:
        e = '&#39;';
        break;
      case 47:
        e = '&#x2F;';
        break;
      case 96:
        e = '&#x60;';
        break;
      case 61:
        e = '&#x3D;';
        break;
      default:
        continue;
    }
    if (i > last) out += s.slice(last, i);
    out += e;
    last = i + 1;
  }
  return last === 0 ? s : last < s.length ? out + s.slice(last) : out;
}

export function renderHtml(template: string, view: unknown): string {
  return renderCompiled(template, view, escapeHtml);
}

/** text/plain has no markup: HTML-escaping there would show "&lt;" to the reader. */
export function renderText(template: string, view: unknown): string {
  return renderCompiled(template, view, noEscape);
}

/**
 * The email's Subject from DIGEST_SUBJECT. Only the admin's template is rendered, with `total`
 * alone in its view, and line breaks are flattened: nothing a sender wrote reaches this header.
 */
export function renderSubject(template: string, total: number): string {
  return renderText(template, { total })
    .replace(/[\r\n\t]+/g, ' ')
    .trim()
    .slice(0, 250);
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/**
 * Intl.DateTimeFormat is costly to build (tens of microseconds) and a digest run formats a time per
 * listed message: one formatter per zone, kept for the process (an unknown zone is remembered as null).
 */
const formatters = new Map<string, Intl.DateTimeFormat | null>();

function formatterOf(tz: string): Intl.DateTimeFormat | null {
  let f = formatters.get(tz);
  if (f === undefined) {
    f = null;
    if (/^[A-Za-z0-9_+\-/]{1,64}$/.test(tz)) {
      try {
        f = new Intl.DateTimeFormat('en-CA', {
          timeZone: tz,
          year: 'numeric',
          month: '2-digit',
          day: '2-digit',
          hour: '2-digit',
          minute: '2-digit',
          hourCycle: 'h23',
        });
      } catch {
        f = null;
      }
    }
    if (formatters.size < 1000) formatters.set(tz, f);
  }
  return f;
}

/** "2026-07-03 14:05 (Europe/Berlin)" or "2026-07-03 12:05 UTC". An unknown zone falls back to UTC. */
export function formatTime(epochSeconds: number, timeZone: string | null): string {
  const f = timeZone ? formatterOf(timeZone) : null;
  const d = new Date(epochSeconds * 1000);
  if (!f) {
    const y = d.getUTCFullYear();
    if (y >= 1000 && y <= 9999) {
      return `${y}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())} UTC`;
    }
  }
  const parts = (f ?? formatterOf('UTC')!).formatToParts(d);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  const stamp = `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}`;
  return f ? `${stamp} (${timeZone})` : `${stamp} UTC`;
}

export function timeZoneLabel(timeZone: string | null): string {
  return timeZone && isTimeZone(timeZone) ? `in ${timeZone}` : 'in UTC';
}

export function isTimeZone(tz: string): boolean {
  return formatterOf(tz) !== null;
}

let zoneList: string[] | null = null;

/** The runtime's IANA zones (what the owner's page offers and accepts), with UTC first. */
export function timeZones(): readonly string[] {
  if (!zoneList) {
    const listed = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
    zoneList = ['UTC', ...listed.filter((z) => z !== 'UTC')];
  }
  return zoneList;
}

export function isListedTimeZone(tz: string): boolean {
  return timeZones().includes(tz);
}

const REASON_MAX = 120;

/**
 * A short reason from the stored headers: amavisd adds X-Amavis-Alert to what it quarantines,
 * e.g. "INFECTED, message contains virus: Eicar-Signature" or "BANNED, message contains ...,invoice.exe".
 */
export function reasonFromHeaders(head: string): string {
  const end = head.search(/\r?\n\r?\n/);
  const unfolded = (end >= 0 ? head.slice(0, end) : head).replace(/\r?\n[ \t]+/g, ' ');
  const raw = /^X-Amavis-Alert:[ \t]*(.+)$/im.exec(unfolded)?.[1]?.trim();
  if (!raw) return '';
  // a bad header's text comes with amavisd's \x{..} escapes; cut between characters, not inside one
  const alert = decodePerlEscapes(raw);
  const virus = /virus:\s*(.+)$/i.exec(alert)?.[1];
  if (virus) return cutText(`virus: ${virus.trim()}`, REASON_MAX);
  const banned = /^BANNED,\s*message contains\s*(.+)$/i.exec(alert)?.[1];
  if (banned) {
    // amavisd lists the MIME type path then the offending name last: "text/plain,.exe,invoice.exe"
    const name = banned.split(',').pop()!.trim();
    return cutText(`banned: ${name}`, REASON_MAX);
  }
  return cutText(alert, REASON_MAX);
}
