import { sql, type Expression, type SqlBool } from 'kysely';
import { codesOfTypes } from '../amavis/codes.ts';
import { bind, text } from '../amavis/schema.ts';
import type { Identity } from '../auth/identity.ts';
import { score } from '../quarantine/item.ts';
import { recipientScope } from '../quarantine/scope.ts';
import { idOfLedgerName, ledgerName, liveKeys } from './admin-subscriptions.ts';
import { alertReasons, domainConditions, isDue, MAX_LISTED, WAITING, type PlanContext, type RecipientDigest } from './plan.ts';

/**
 * What an admin's digest lists (README "An admin's digest"): every waiting copy in its reach since
 * its watermark, newest first, each with its recipient. Admin digests are few (at most 100 per key),
 * so they are planned in one list; each digest costs three queries. The release policy does not
 * limit admins: hidden types are listed too, and each item offers release, allow-sender and delete.
 */

/** The ledger names of the admin digests that are due (frequency and watermark), their key live. */
export async function dueAdminDigests(ctx: PlanContext): Promise<string[]> {
  const subs = await ctx.deps.state.selectFrom('qe_admin_digests').select(['id', 'key_id', 'frequency']).orderBy('id').execute();
  const live = await liveKeys(
    ctx.deps,
    subs.map((s) => s.key_id),
  );
  const names = subs.filter((s) => live.has(s.key_id)).map((s) => ledgerName(s.id));
  if (names.length === 0 || ctx.mode.allTime) return names;
  const states = await ctx.deps.state
    .selectFrom('qe_digest_state')
    .select(['recipient', 'last_sent_at'])
    .where('recipient', 'in', names)
    .execute();
  const sentAt = new Map(states.map((s) => [s.recipient, s.last_sent_at]));
  return subs.filter((s) => live.has(s.key_id) && isDue(s.frequency, sentAt.get(ledgerName(s.id)), ctx.now)).map((s) => ledgerName(s.id));
}

/** The reach a digest's key may see now: a domain admin's domains may have changed since it subscribed. */
function reachOf(key: Identity, domains: string[] | null): Identity {
  if (key.role === 'admin') return domains === null ? key : { role: 'domain_admin', actor: key.actor, keyId: key.keyId ?? '', domains };
  if (key.role === 'domain_admin') return { ...key, domains: (domains ?? key.domains).filter((d) => key.domains.includes(d)) };
  return { ...key, role: 'domain_admin', keyId: key.keyId ?? '', domains: [] };
}

interface Row {
  rcpt: unknown;
  partition_tag: number;
  mail_id: unknown;
  time_num: number | string;
  content: string | null;
  rcontent: string | null;
  bspam_level: number | string | null;
  spam_level: number | string | null;
  subject: unknown;
  sender: unknown;
}

const code = sql`COALESCE(NULLIF(TRIM(mr.content), ''), TRIM(m.content))`;
const countOf = (codes: string[]) => sql`SUM(CASE WHEN ${code} IN (${sql.join(codes)}) THEN 1 ELSE 0 END)`;

/** The digests of these ledger names that have something new (`ctx.load` for send.ts). */
export async function loadAdminDigests(ctx: PlanContext, names: string[]): Promise<RecipientDigest[]> {
  const { deps, mode } = ctx;
  const v = deps.variant;
  const ids = names.map(idOfLedgerName).filter((x): x is string => x !== null);
  if (ids.length === 0) return [];
  const subs = await deps.state.selectFrom('qe_admin_digests').selectAll().where('id', 'in', ids).execute();
  const live = await liveKeys(
    deps,
    subs.map((s) => s.key_id),
  );
  const states = mode.allTime
    ? []
    : await deps.state
        .selectFrom('qe_digest_state')
        .selectAll()
        .where(
          'recipient',
          'in',
          subs.map((s) => ledgerName(s.id)),
        )
        .execute();
  const stateOf = new Map(states.map((s) => [s.recipient, s]));
  const listable = v.lookup.missing.length === 0;
  const out: RecipientDigest[] = [];
  for (const sub of subs.sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const key = live.get(sub.key_id);
    if (!key) continue; // what a key created ends when the key is revoked
    const name = ledgerName(sub.id);
    const st = stateOf.get(name);
    if (!mode.allTime && !mode.ignoreFrequency && !isDue(sub.frequency, st?.last_sent_at, ctx.now)) continue;
    const domains = sub.domains === null ? null : (JSON.parse(sub.domains) as string[]);
    const conds: Expression<SqlBool>[] = [
      sql<SqlBool>`m.quar_type = 'Q'`,
      sql<SqlBool>`m.content IS NOT NULL`,
      sql<SqlBool>`m.time_num < ${ctx.cutoff}`,
      sql<SqlBool>`mr.rs IN (${sql.join(WAITING)})`,
      recipientScope(reachOf(key, domains), v),
      ...domainConditions(ctx, 'r.domain', true),
    ];
    if (st) {
      const t = Number(st.last_time_num);
      conds.push(sql<SqlBool>`(m.time_num > ${t} OR (m.time_num = ${t} AND m.mail_id > ${bind(v, 'msgs.mail_id', st.last_mail_id)}))`);
    }
    const where = sql.join(conds, sql` AND `);
    const from = sql`msgrcpt mr JOIN maddr r ON r.id = mr.rid JOIN msgs m ON m.partition_tag = mr.partition_tag AND m.mail_id = mr.mail_id`;
    const { rows: counts } = await sql<{ total: number | string; n_spam: unknown; n_virus: unknown; n_banned: unknown }>`
      SELECT COUNT(*) AS total, ${countOf(codesOfTypes(['spam', 'spammy']))} AS n_spam, ${countOf(['V'])} AS n_virus,
        ${countOf(['B'])} AS n_banned FROM ${from} WHERE ${where}`.execute(deps.db);
    const total = Number(counts[0]?.total ?? 0);
    if (total === 0) continue;
    const { rows } = await sql<Row>`SELECT r.email AS rcpt, m.partition_tag, m.mail_id, m.time_num, m.content,
        mr.content AS rcontent, mr.bspam_level, m.spam_level, m.subject, s.email AS sender
      FROM ${from} LEFT JOIN maddr s ON s.id = m.sid WHERE ${where}
      ORDER BY m.time_num DESC, m.mail_id DESC, r.email LIMIT ${MAX_LISTED}`.execute(deps.db);
    if (rows.length === 0) continue;
    const reasons = await alertReasons(ctx, rows);
    const [spam, virus, banned] = [counts[0]!.n_spam, counts[0]!.n_virus, counts[0]!.n_banned].map((n) => Number(n ?? 0)) as [
      number,
      number,
      number,
    ];
    const messages = rows.map((row) => {
      const mailId = text(row.mail_id);
      return {
        partitionTag: Number(row.partition_tag),
        mailId,
        timeNum: Number(row.time_num),
        contentCode: (row.rcontent ?? '').trim() || (row.content ?? '?').trim() || '?',
        subject: text(row.subject),
        sender: text(row.sender),
        score: score(row.bspam_level ?? row.spam_level),
        reason: reasons.get(`${Number(row.partition_tag)}.${mailId}`) ?? '',
        actions: listable ? (['release', 'release_allow', 'delete'] as const).slice() : (['release', 'delete'] as const).slice(),
        recipient: text(row.rcpt),
      };
    });
    out.push({
      recipient: name,
      total,
      messages,
      timeZone: sub.time_zone,
      language: sub.language,
      kinds: { spam, virus, banned, other: Math.max(0, total - spam - virus - banned) },
      from: st ? { time: Number(st.last_time_num), mailId: st.last_mail_id.trim() } : null,
      to: { time: messages[0]!.timeNum, mailId: messages[0]!.mailId },
      admin: { id: sub.id, address: sub.address, keyId: sub.key_id, domains },
    });
  }
  return out;
}
