import { typeOfCode } from '../amavis/codes.ts';
import { formatTime, isTimeZone } from './render.ts';
import { CATALOGS } from './templates.generated.ts';

/**
 * The digest's words in the owner's language, from the catalogs in templates/messages/. A key a
 * catalog lacks falls back to English; `{name}` placeholders are filled with plain values (the
 * templates escape them), and "key.one" / "key.other" pick the plural form by Intl.PluralRules.
 */
export const DEFAULT_LANGUAGE = 'en';
export const LANGUAGES = Object.keys(CATALOGS);

export type Words = {
  language: string;
  /** numbers in the vars are written as the language writes them (1.000 in German) */
  t(key: string, vars?: Record<string, string | number>): string;
  /** `key.<category>` for n, the category chosen by Intl.PluralRules (one, few, many, other) */
  n(key: string, n: number, vars?: Record<string, string | number>): string;
  num(n: number): string;
  /** "3 juil. 2026, 14:05 (Europe/Berlin)", "Jul 3, 2026, 2:05 PM UTC": the locale's date and time in the zone */
  time(epochSeconds: number, timeZone: string | null): string;
};

const fill = (s: string, vars: Record<string, string | number>, num: (n: number) => string) =>
  s.replace(/\{([a-z_]+)\}/g, (all, k: string) => {
    if (!(k in vars)) return all;
    const v = vars[k]!;
    return typeof v === 'number' ? num(v) : v;
  });

/** One Words per language, made once (a digest run asks for them once per recipient). */
const made = new Map<string, Words>();

export function wordsFor(language: string | null | undefined): Words {
  const lang = language && CATALOGS[language] ? language : DEFAULT_LANGUAGE;
  let w = made.get(lang);
  if (!w) made.set(lang, (w = makeWords(lang)));
  return w;
}

function makeWords(lang: string): Words {
  const own = CATALOGS[lang]!;
  const en = CATALOGS[DEFAULT_LANGUAGE]!;
  const rules = new Intl.PluralRules(lang);
  const numbers = new Intl.NumberFormat(lang);
  const num = (n: number) => numbers.format(n);
  const times = new Map<string, Intl.DateTimeFormat | null>();
  // A digest asks for the same words for every message: the plain ones (no vars) are made once,
  // and a time once per zone and minute (the format shows minutes; zone offsets since 1973 are whole minutes).
  const plain = new Map<string, string>();
  const stamps = new Map<string, string>();
  const t = (key: string, vars?: Record<string, string | number>) => {
    if (vars) return fill(own[key] ?? en[key] ?? key, vars, num);
    let s = plain.get(key);
    if (s === undefined) plain.set(key, (s = fill(own[key] ?? en[key] ?? key, {}, num)));
    return s;
  };
  const format = (epochSeconds: number, timeZone: string | null): string => {
    const zone = timeZone && isTimeZone(timeZone) ? timeZone : 'UTC';
    let f = times.get(zone);
    if (f === undefined) {
      try {
        f = new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short', timeZone: zone });
      } catch {
        f = null;
      }
      if (times.size < 1000) times.set(zone, f);
    }
    const d = new Date(epochSeconds * 1000);
    if (!f || Number.isNaN(d.getTime())) return formatTime(epochSeconds, timeZone);
    return zone === 'UTC' ? `${f.format(d)} UTC` : `${f.format(d)} (${zone})`;
  };
  return {
    language: lang,
    t,
    num,
    time: (epochSeconds, timeZone) => {
      if (!(epochSeconds >= 1e8 && epochSeconds <= 1e11)) return format(epochSeconds, timeZone);
      const key = `${timeZone ?? ''}|${Math.floor(epochSeconds / 60)}`;
      let s = stamps.get(key);
      if (s === undefined) {
        if (stamps.size >= 20_000) stamps.clear();
        stamps.set(key, (s = format(epochSeconds, timeZone)));
      }
      return s;
    },
    n: (key, n, vars = {}) => {
      const form = rules.select(n);
      const k = own[`${key}.${form}`] !== undefined || en[`${key}.${form}`] !== undefined ? `${key}.${form}` : `${key}.other`;
      return t(k, { n, ...vars });
    },
  };
}

/** The four kinds the digest counts, in the order it names them. */
export const KINDS = ['spam', 'virus', 'banned', 'other'] as const;
export type Kind = (typeof KINDS)[number];

export function kindOf(contentCode: string): Kind {
  const type = typeOfCode(contentCode);
  if (type === 'spam' || type === 'spammy') return 'spam';
  if (type === 'virus' || type === 'banned') return type;
  return 'other';
}

/**
 * Why a message was held, in plain words: "Probably spam", "Contains a virus: Eicar-Signature",
 * "Blocked attachment: invoice.exe". `detail` is the short reason the plan read from the stored
 * X-Amavis-Alert header ("virus: NAME", "banned: NAME"); other alerts are the filter's jargon and
 * are not shown to the owner.
 */
export function reasonWords(w: Words, contentCode: string, detail: string): string {
  const type = typeOfCode(contentCode);
  const named = (prefix: string) => (detail.startsWith(prefix) ? detail.slice(prefix.length).trim() : '');
  switch (type) {
    case 'spam':
    case 'spammy':
      return w.t('reason.spam');
    case 'virus': {
      const name = named('virus:');
      return name ? w.t('reason.virus_named', { name }) : w.t('reason.virus');
    }
    case 'banned': {
      const name = named('banned:');
      return name ? w.t('reason.banned_named', { name }) : w.t('reason.banned');
    }
    case 'bad-header':
      return w.t('reason.bad_header');
    case 'bad-mime':
      return w.t('reason.bad_mime');
    case 'oversized':
      return w.t('reason.oversized');
    case 'unchecked':
      return w.t('reason.unchecked');
    default:
      return w.t('reason.other');
  }
}

/**
 * "2 probably spam and 1 with a virus": the kinds present, in KINDS order, joined as the language
 * lists things (Intl.ListFormat: "、" in Japanese, "und" in German).
 */
export function kindsSentence(w: Words, counts: Record<Kind, number>): string {
  const parts = KINDS.filter((k) => counts[k] > 0).map((k) => w.n(`kind.${k}`, counts[k]));
  return new Intl.ListFormat(w.language, { type: 'conjunction' }).format(parts);
}

/**
 * Text mail wrapped at `width` columns (RFC 5322's 78): long lines break at spaces, continuation
 * lines keep the line's indent; a word longer than the line (a URL) is never broken, so a link
 * stays whole and clickable on a line of its own.
 */
export function wrapText(text: string, width = 78): string {
  return text
    .split('\n')
    .map((line) => {
      if (line.length <= width) return line;
      const indent = /^\s*/.exec(line)![0];
      const out: string[] = [];
      let cur = '';
      for (const word of line.slice(indent.length).split(/ +/)) {
        if (cur && indent.length + cur.length + 1 + word.length > width) {
          out.push(indent + cur);
          cur = word;
        } else {
          cur = cur ? `${cur} ${word}` : word;
        }
      }
      if (cur) out.push(indent + cur);
      return out.join('\n');
    })
    .join('\n');
}
