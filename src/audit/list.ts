import { sql } from 'kysely';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { withSubjects } from './subjects.ts';

export interface AuditQuery {
  action?: string;
  /** any of these results */
  result?: string[];
  mail_id?: string;
  /** entries naming this recipient address */
  recipient?: string;
  actor?: string;
  since?: number;
  until?: number;
  limit: number;
  /** the id of the last row of the previous page */
  before?: number;
}

export interface AuditEntryView {
  id: number;
  at: string;
  actor: string;
  actor_role: string;
  action: string;
  partition_tag: number | null;
  mail_id: string | null;
  recipients: string[] | null;
  result: string;
  detail: unknown;
  key: { id: string; name: string | null } | null;
  /** the message's subject while amavisd still stores the message, else null */
  subject: string | null;
}

/** Admins see everything; a domain admin the entries that touched its domains; users nothing. */
export async function listAudit(deps: Deps, who: Identity, q: AuditQuery) {
  if (who.role === 'user') throw new AppError('not_found', 'not found');
  let query = deps.state
    .selectFrom('qe_audit')
    .selectAll()
    // the request's gateway's entries only (README "Gateways: who sees what")
    .where('gateway_id', '=', deps.gateway)
    .orderBy('id', 'desc')
    .limit(q.limit + 1);
  if (q.action) query = query.where('action', '=', q.action);
  if (q.result?.length) query = query.where('result', 'in', q.result);
  if (q.mail_id) query = query.where('mail_id', '=', q.mail_id);
  if (q.actor) query = query.where('actor', '=', q.actor);
  if (q.recipient) {
    // a domain admin asking about another domain's recipient learns nothing of it, not even "a shared message"
    if (who.role === 'domain_admin' && !who.domains.includes(q.recipient.slice(q.recipient.lastIndexOf('@') + 1))) {
      return { items: [], next_before: null };
    }
    // recipients is a JSON list: the address as JSON writes it, quotes included, LIKE's wildcards escaped
    const pattern = `%${JSON.stringify(q.recipient).replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    query = query.where('recipients', 'like', pattern);
  }
  if (q.since !== undefined) query = query.where('at', '>=', q.since);
  if (q.until !== undefined) query = query.where('at', '<', q.until);
  if (q.before !== undefined) query = query.where('id', '<', q.before);
  if (who.role === 'domain_admin') {
    const domains = who.domains;
    query = query.where((eb) => (domains.length ? eb.or(domains.map((d) => eb('domains', 'like', `%,${d},%`))) : sql<boolean>`1 = 0`));
  }
  const rows = await query.execute();
  const page = rows.slice(0, q.limit);
  const mine = (a: string) => who.role === 'admin' || who.domains.includes(a.slice(a.lastIndexOf('@') + 1));
  const items: AuditEntryView[] = page.map((r) => ({
    id: Number(r.id),
    at: new Date(Number(r.at) * 1000).toISOString(),
    actor: r.actor,
    actor_role: r.actor_role,
    action: r.action,
    partition_tag: r.partition_tag === null ? null : Number(r.partition_tag),
    mail_id: r.mail_id,
    // a domain admin sees only its own domains' recipients of a shared message
    recipients: r.recipients ? (JSON.parse(r.recipients) as string[]).filter(mine) : null,
    result: r.result,
    detail: scopeDetail(parseDetail(r.detail), mine),
    key: r.key_id ? { id: r.key_id, name: r.key_name ?? null } : null,
    subject: null,
  }));
  await withSubjects(deps, items);
  return { items, next_before: rows.length > q.limit ? items[items.length - 1]!.id : null };
}

/** Per-recipient details (release results) are cut to the caller's recipients like `recipients`. */
function scopeDetail(detail: unknown, mine: (address: string) => boolean): unknown {
  if (!Array.isArray(detail)) return detail;
  return detail.filter((d) => !(d && typeof d === 'object' && 'recipient' in d) || mine(String((d as { recipient: unknown }).recipient)));
}

function parseDetail(d: string | null): unknown {
  if (d === null) return null;
  try {
    return JSON.parse(d);
  } catch {
    return d;
  }
}
