import { decodePerlEscapes } from '../amavis/alert-text.ts';

/** One SpamAssassin rule that hit, with its score when amavisd wrote it (tests=[NAME=score, ...]). */
export interface RuleHit {
  name: string;
  score: number | null;
}

/** Header text read at most: X-Spam-Status is attacker-influenced and may be folded over many lines. */
const MAX_HEADER = 8 * 1024;
const MAX_RULES = 200;
const RULE = /^([A-Za-z0-9_]{1,64})(?:=(-?\d{1,6}(?:\.\d{1,6})?))?$/;

/**
 * The rules in X-Spam-Status's `tests=` list, highest score first. Linear in the (bounded) input: one
 * indexOf, one split, a fixed pattern per item. amavisd writes `tests=[A=1.2, B=-0.1]`; SpamAssassin
 * alone `tests=A,B` (no scores). Anything that does not look like a rule is left out.
 */
export function spamRules(header: string | undefined): RuleHit[] {
  if (!header) return [];
  const h = header.slice(0, MAX_HEADER);
  const at = h.search(/\btests=/);
  if (at < 0) return [];
  let rest = h.slice(at + 6);
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    rest = rest.slice(1, end < 0 ? undefined : end);
  } else {
    rest = rest.split(/\s/, 1)[0] ?? '';
  }
  const out: RuleHit[] = [];
  for (const item of rest.split(',')) {
    const m = RULE.exec(item.trim());
    if (!m) continue;
    out.push({ name: m[1]!, score: m[2] === undefined ? null : Number(m[2]) });
    if (out.length === MAX_RULES) break;
  }
  return out.sort((a, b) => (b.score ?? 0) - (a.score ?? 0));
}

/** What amavisd's X-Amavis-Alert says was found: the virus names, or the banned part; null for other alerts. */
export function alertFinding(alerts: string[]): { kind: 'virus' | 'banned'; text: string } | null {
  for (const raw of alerts) {
    const a = decodePerlEscapes(raw.slice(0, 2000)).replace(/\s+/g, ' ').trim();
    const virus = /^INFECTED, message contains virus: (.+)$/i.exec(a);
    if (virus) return { kind: 'virus', text: virus[1]! };
    const banned = /^BANNED, message contains (.+)$/i.exec(a);
    if (banned) return { kind: 'banned', text: banned[1]! };
  }
  return null;
}
