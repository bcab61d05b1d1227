import { CATALOGS } from './templates.generated.ts';

/**
 * Which catalog a reader gets. Emails: the subscription's language, else DIGEST_LANGUAGE, else
 * English. Pages: the same, with the browser's Accept-Language between DIGEST_LANGUAGE and English
 * (README: Languages).
 */
const CODES = Object.keys(CATALOGS);
const BY_LOWER = new Map(CODES.map((c) => [c.toLowerCase(), c]));
/** a tag's primary language ("pt" of "pt-PT") to our one catalog of it */
const BY_BASE = new Map(CODES.map((c) => [c.split('-')[0]!.toLowerCase(), c]));
/** Traditional Chinese readers are not sent to the Simplified catalog */
const TRADITIONAL = /^zh-(hant|tw|hk|mo)\b/;

/** One language tag to a catalog code: exact (any case), else the same primary language; null: none. */
export function catalogOf(tag: string): string | null {
  const t = tag.trim().toLowerCase();
  if (!t || t === '*' || t.length > 35) return null;
  const exact = BY_LOWER.get(t);
  if (exact) return exact;
  if (TRADITIONAL.test(t)) return null;
  return BY_BASE.get(t.split('-')[0]!) ?? null;
}

/** The best catalog for an Accept-Language header (RFC 9110 q-values; ties in the header's order). */
export function negotiate(header: string | null | undefined): string | null {
  if (!header) return null;
  const ranges = header
    .slice(0, 1000)
    .split(',')
    .slice(0, 30)
    .map((part, i) => {
      const [tag = '', ...params] = part.split(';');
      const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)?.[1]).find((x) => x !== undefined);
      return { tag, q: q === undefined ? 1 : Number(q), i };
    })
    .filter((r) => r.q > 0 && Number.isFinite(r.q))
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const r of ranges) {
    const code = catalogOf(r.tag);
    if (code) return code;
  }
  return null;
}

/** The first of the candidates that names a catalog (a stored language, DIGEST_LANGUAGE, a negotiated one), else English. */
export function pickLanguage(...candidates: Array<string | null | undefined>): string {
  for (const c of candidates) if (c && CODES.includes(c)) return c;
  return 'en';
}
