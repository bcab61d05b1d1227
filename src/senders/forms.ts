import { normalizeAddress, normalizeDomain } from '../amavis/address.ts';

/**
 * The address forms amavisd's SQL lookups use as keys (README.lookups, "SQL LOOKUPS"): a recipient
 * in `users.email`, a sender in `mailaddr.email`. amavisd builds its keys lowercased (domain always,
 * local part unless $localpart_is_case_sensitive), IDN as A-labels, so we store exactly that.
 *
 * Priorities are iRedMail's (iRedAdmin / iRedAPD MAILADDR_PRIORITIES, the values iRedMail writes for
 * both users.priority and mailaddr.priority): mailbox 10, @domain 5, @.sub-domain wildcard 3,
 * @.tld 2, @. catch-all 0. amavisd sorts both tables by priority DESC, so the most specific wins.
 */
export const PRIORITY = { mailbox: 10, domain: 5, subdomains: 3, tld: 2, catchall: 0 } as const;

export type RecipientKind = 'mailbox' | 'domain' | 'global';
export interface RecipientForm {
  key: string;
  kind: RecipientKind;
  /** the domain it belongs to; null for '@.' */
  domain: string | null;
  priority: number;
}

export interface SenderForm {
  key: string;
  priority: number;
}

/** 'user@example.com' | '@example.com' | '@.' (everything), as users.email holds it; null if invalid. */
export function parseRecipient(input: string): RecipientForm | null {
  const s = input.trim();
  if (s === '@.') return { key: '@.', kind: 'global', domain: null, priority: PRIORITY.catchall };
  if (s.startsWith('@')) {
    const d = normalizeDomain(s.slice(1));
    return d && !d.startsWith('.') ? { key: `@${d}`, kind: 'domain', domain: d, priority: PRIORITY.domain } : null;
  }
  if (/[\x00-\x1f\x7f]/.test(input)) return null;
  const a = normalizeAddress(s);
  return a ? { key: a, kind: 'mailbox', domain: a.slice(a.lastIndexOf('@') + 1), priority: PRIORITY.mailbox } : null;
}

/** 'a@b.example' | '@b.example' | '@.b.example' (b.example and its subdomains), as mailaddr.email holds it. */
export function parseSender(input: string): SenderForm | null {
  const s = input.trim();
  if (/[\x00-\x1f\x7f]/.test(input)) return null;
  if (s.startsWith('@.')) {
    const d = normalizeDomain(s.slice(2));
    if (!d || d.startsWith('.')) return null;
    return { key: `@.${d}`, priority: d.includes('.') ? PRIORITY.subdomains : PRIORITY.tld };
  }
  if (s.startsWith('@')) {
    const d = normalizeDomain(s.slice(1));
    return d && !d.startsWith('.') ? { key: `@${d}`, priority: PRIORITY.domain } : null;
  }
  const a = normalizeAddress(s);
  return a ? { key: a, priority: PRIORITY.mailbox } : null;
}

/** amavisd's reading of wblist.wb (Amavis::SpamControl white_black_list). */
export function listOfWb(wb: string): 'allow' | 'block' | 'neutral' | 'score' {
  if (/^ *[+-]?\d+(\.\d*)? *$/.test(wb)) return 'score';
  if (/^[ \0]*$/.test(wb)) return 'neutral';
  if (/^[BbNnFf] *$/.test(wb)) return 'block';
  return 'allow';
}
