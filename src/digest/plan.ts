import { sql, type Expression, type SqlBool } from 'kysely';
import { codesOfTypes, typeOfCode } from '../amavis/codes.ts';
import { domainOf, reverseDomain } from '../amavis/address.ts';
import { bind, text } from '../amavis/schema.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { score } from '../quarantine/item.ts';
import {
  codesOfPolicyTypes,
  effectiveRules,
  loadPolicyTable,
  ownerActions,
  POLICY_TYPES,
  policyTypeOf,
  type OwnerLinkAction,
  type Rules,
} from '../quarantine/release-policy.ts';
import { recipientScope } from '../quarantine/scope.ts';
import { reasonFromHeaders } from './render.ts';
import { ENABLED_OFF, ENABLED_ON, NOT_CHOSEN } from './subscriptions.ts';

/**
 * Who gets a digest, and what is in it. The plan streams recipients in pages (keyset on the
 * address), and each page costs a fixed number of queries whatever its size, so a run over any
 * number of recipients holds one page in memory.
 *
 * No statement joins our tables with amavisd's: subscriptions, watermarks and release policies are
 * read from the state database (deps.state), then the waiting mail of exactly that page's
 * recipients from amavisd's (deps.db), and the two are merged here, a page at a time. With one
 * database both handles are the same, so a state database apart (README "State in its own
 * database") runs the same statements, each against the database that holds its tables.
 */
export interface DigestMode {
  /** every recipient with quarantined mail, not only those who subscribed (opt-outs still hold) */
  forceAll: boolean;
  /** all their pending quarantined mail, not only what arrived after their watermark */
  allTime: boolean;
  /** also recipients in BACKUP_MX_DOMAINS (skipped otherwise: that mail is not ours to report) */
  includeBackupMx: boolean;
  recipients?: string[];
  /** preview: show what is waiting whatever the subscriber's frequency */
  ignoreFrequency?: boolean;
}

export interface PlannedMessage {
  partitionTag: number;
  mailId: string;
  timeNum: number;
  contentCode: string;
  subject: string;
  sender: string;
  score: number | null;
  reason: string;
  /** the one-click links the owner's release policy allows for it (release-policy.ts ownerActions); unset: the defaults' */
  actions?: OwnerLinkAction[];
  /** an admin's digest: whose copy this is (shown on the item; its links act for this recipient) */
  recipient?: string;
}

export interface RecipientDigest {
  recipient: string;
  /** every pending message in the window; `messages` lists the newest `MAX_LISTED` of them */
  total: number;
  messages: PlannedMessage[];
  timeZone: string | null;
  /** the owner's language (a catalog in templates/messages/); null or absent: English */
  language?: string | null;
  /** every pending message in the window by kind (absent: counted from `messages`) */
  kinds?: { spam: number; virus: number; banned: number; other: number };
  from: { time: number; mailId: string } | null;
  /** the newest message covered: the watermark once the mail service has accepted the digest */
  to: { time: number; mailId: string };
  /** an admin's digest (src/digest/admin-plan.ts): `recipient` is then its ledger name, not an address */
  admin?: AdminDigestOf;
}

export interface AdminDigestOf {
  id: string;
  /** where it is sent */
  address: string;
  /** the key it belongs to: its links act as that key */
  keyId: string;
  /** null: every domain */
  domains: string[] | null;
}

export const MAX_LISTED = 50;
/** A cron tick is never exactly on time: "due" allows this much early. */
const SLACK = 300;
const PERIOD: Record<string, number> = { hourly: 3600, daily: 86400, weekly: 7 * 86400 };
export const FREQUENCIES = ['hourly', 'daily', 'weekly'] as const;
export type Frequency = (typeof FREQUENCIES)[number];

export function isDue(frequency: string, lastSentAt: number | string | null | undefined, now: number): boolean {
  if (lastSentAt === null || lastSentAt === undefined) return true;
  return Number(lastSentAt) <= now - (PERIOD[frequency] ?? PERIOD.daily!) + SLACK;
}

/** msgrcpt.rs values that are still waiting for the recipient (not 'p': a release is under way). */
export const WAITING = [' ', '', 'V'];

export interface PlanContext {
  deps: Deps;
  who: Identity;
  mode: DigestMode;
  /** epoch seconds */
  now: number;
  /** only messages with time_num below this are covered (see inProgressCutoff) */
  cutoff: number;
  /** loads digests by ledger name again (send.ts settles and refreshes); absent: the owners' loadDigests */
  load?: (ctx: PlanContext, names: string[]) => Promise<RecipientDigest[]>;
}

/**
 * amavisd writes a msgs row with content NULL when a message arrives and completes it later, with
 * its arrival time. A watermark past such a row would skip it for ever once it completes, so a run
 * covers only messages older than the oldest one still in progress (looking back `horizon` seconds).
 */
export async function inProgressCutoff(deps: Deps, now: number, horizon = 600): Promise<number> {
  if (horizon <= 0) return now + 1;
  const { rows } = await sql<{ t: number | string | null }>`SELECT MIN(time_num) AS t FROM msgs
    WHERE content IS NULL AND time_num > ${now - horizon}`.execute(deps.db);
  const t = rows[0]?.t;
  return t === null || t === undefined ? now + 1 : Math.min(now + 1, Number(t));
}

export function domainConditions(ctx: PlanContext, domainRef: string, reversed: boolean): Expression<SqlBool>[] {
  const { deps, mode } = ctx;
  const backup = deps.config.BACKUP_MX_DOMAINS;
  if (mode.includeBackupMx || backup.length === 0) return [];
  const ref = sql.ref(domainRef);
  const values = backup.map((d) => (reversed ? bind(deps.variant, 'maddr.domain', reverseDomain(d)) : d));
  return [sql<SqlBool>`${ref} NOT IN (${sql.join(values)})`];
}

/** One page of the plan, and where the next one starts. */
export interface PlannedPage {
  recipients: string[];
  /** the keyset cursor (the last address of this page) when more follow; null: this was the last page */
  next: string | null;
}

/**
 * Subscribers whose digest is due, or (force_all) every recipient with waiting quarantined mail:
 * the (at most) `n` after `after` in address order. One query reads one row more than the page to
 * tell whether another page follows. An inline run walks the pages one after another
 * (recipientPages); on Workers each planning invocation plans one page and hands its cursor on
 * through the queue (job.ts), so no invocation walks every recipient.
 */
export async function planPage(ctx: PlanContext, after: string, n: number): Promise<PlannedPage> {
  const rows = ctx.mode.forceAll ? await quarantinedPage(ctx, after, n + 1) : await subscriberPage(ctx, after, n + 1);
  if (rows.length <= n) return { recipients: rows, next: null };
  const recipients = rows.slice(0, n);
  return { recipients, next: recipients[n - 1]! };
}

/** Every page of the plan, one after another (an inline run). */
export async function* recipientPages(ctx: PlanContext, pageSize: number): AsyncGenerator<string[]> {
  let after: string | null = '';
  while (after !== null) {
    const page: PlannedPage = await planPage(ctx, after, pageSize);
    if (page.recipients.length > 0) yield page.recipients;
    after = page.next;
  }
}

async function subscriberPage(ctx: PlanContext, after: string, n: number): Promise<string[]> {
  const { who, mode, now } = ctx;
  const conds: Expression<SqlBool>[] = [sql<SqlBool>`sub.enabled = 1`, sql<SqlBool>`sub.address > ${after}`];
  if (!mode.allTime) {
    const due = Object.entries(PERIOD).map(([f, p]) => sql<SqlBool>`(sub.frequency = ${f} AND st.last_sent_at <= ${now - p + SLACK})`);
    conds.push(sql<SqlBool>`(st.recipient IS NULL OR ${sql.join(due, sql` OR `)})`);
  }
  if (who.role === 'user') conds.push(sql<SqlBool>`sub.address = ${who.mailbox}`);
  if (who.role === 'domain_admin')
    conds.push(who.domains.length ? sql<SqlBool>`sub.domain IN (${sql.join([...who.domains])})` : sql<SqlBool>`1 = 0`);
  if (mode.recipients)
    conds.push(mode.recipients.length ? sql<SqlBool>`sub.address IN (${sql.join(mode.recipients)})` : sql<SqlBool>`1 = 0`);
  conds.push(...domainConditions(ctx, 'sub.domain', false));
  // this gateway's subscribers and watermarks ('' the deployment's own)
  conds.push(sql<SqlBool>`sub.gateway_id = ${ctx.deps.gateway}`);
  const { rows } = await sql<{ address: string }>`SELECT sub.address FROM qe_digest_subscriptions sub
    LEFT JOIN qe_digest_state st ON st.gateway_id = sub.gateway_id AND st.recipient = sub.address
    WHERE ${sql.join(conds, sql` AND `)} ORDER BY sub.address LIMIT ${n}`.execute(ctx.deps.state);
  return rows.map((r) => r.address);
}

async function quarantinedPage(ctx: PlanContext, after: string, n: number): Promise<string[]> {
  const { deps, who, mode } = ctx;
  const v = deps.variant;
  const conds: Expression<SqlBool>[] = [recipientScope(who, v)];
  if (after) conds.push(sql<SqlBool>`r.email > ${bind(v, 'maddr.email', after)}`);
  if (mode.recipients) {
    conds.push(
      mode.recipients.length
        ? sql<SqlBool>`r.email IN (${sql.join(mode.recipients.map((a) => bind(v, 'maddr.email', a)))})`
        : sql<SqlBool>`1 = 0`,
    );
  }
  conds.push(...domainConditions(ctx, 'r.domain', true));
  const waiting = sql`SELECT 1 FROM msgrcpt mr JOIN msgs m ON m.partition_tag = mr.partition_tag AND m.mail_id = mr.mail_id
    WHERE mr.rid = r.id AND mr.rs IN (${sql.join(WAITING)}) AND m.quar_type = 'Q' AND m.content IS NOT NULL AND m.time_num < ${ctx.cutoff}`;
  // MariaDB turns EXISTS into a semi-join that materializes every waiting message for each page
  // (10 s a page at 200k messages: quadratic over a run); a scalar subquery with LIMIT 1 stays a
  // per-address probe on msgrcpt(rid) while maddr is read in email order (0.2 s). PostgreSQL
  // already plans EXISTS as that probe.
  conds.push(deps.variant.dialect === 'mysql' ? sql<SqlBool>`(${waiting} LIMIT 1) IS NOT NULL` : sql<SqlBool>`EXISTS (${waiting})`);
  const { rows } = await sql<{ email: unknown }>`SELECT DISTINCT r.email FROM maddr r
    WHERE ${sql.join(conds, sql` AND `)} ORDER BY r.email LIMIT ${n}`.execute(deps.db);
  return rows.map((r) => text(r.email));
}

/** How many of a recipient's waiting messages have these content codes (the copy's own code first, as listed). */
const kindCount = (codes: string[]) =>
  sql`SUM(CASE WHEN COALESCE(NULLIF(TRIM(mr.content), ''), TRIM(m.content)) IN (${sql.join(codes)}) THEN 1 ELSE 0 END) OVER (PARTITION BY r.email)`;

/** A waiting copy as the digest reads it (the paged plan here, the streamed pass in stream.ts). */
export interface WaitingRow {
  rcpt: unknown;
  partition_tag: number;
  mail_id: unknown;
  time_num: number | string;
  content: string | null;
  rcontent: string | null;
  bspam_level: number | string | null;
  spam_level: number | string | null;
  subject: unknown;
}

interface MessageRow extends WaitingRow {
  sender: unknown;
  rn: number | string;
  total: number | string;
  n_spam: number | string;
  n_virus: number | string;
  n_banned: number | string;
}

/**
 * The digests of one page of recipients: their subscription and watermark (one query each), their
 * waiting mail (one query, the newest MAX_LISTED per recipient by a window function) and the
 * alert header of virus / banned / bad-header mail (one query). Recipients with nothing new drop out.
 */
export async function loadDigests(ctx: PlanContext, recipients: string[]): Promise<RecipientDigest[]> {
  const { deps, who, mode } = ctx;
  const v = deps.variant;
  if (recipients.length === 0) return [];
  const subs = await deps.state
    .selectFrom('qe_digest_subscriptions')
    .select(['address', 'enabled', 'time_zone', 'frequency', 'language'])
    .where('gateway_id', '=', deps.gateway)
    .where('address', 'in', recipients)
    .execute();
  const subOf = new Map(subs.map((s) => [s.address, s]));
  const states = await deps.state
    .selectFrom('qe_digest_state')
    .selectAll()
    .where('gateway_id', '=', deps.gateway)
    .where('recipient', 'in', recipients)
    .execute();
  const stateOf = new Map(states.map((s) => [s.recipient, s]));
  const wanted = recipients.filter((r) => {
    const sub = subOf.get(r);
    // An explicit opt-out (List-Unsubscribe, PUT enabled=false) holds even for force_all; an owner who
    // saved only a time zone (enabled = 2, not chosen) is reached by force_all as if no row existed.
    const enabled = sub ? Number(sub.enabled) : NOT_CHOSEN;
    if (enabled === ENABLED_OFF || (enabled !== ENABLED_ON && !mode.forceAll)) return false;
    // A subscriber's frequency holds in every mode but all_time (an explicit "send everything now").
    return enabled !== ENABLED_ON || mode.allTime || mode.ignoreFrequency || isDue(sub!.frequency, stateOf.get(r)?.last_sent_at, ctx.now);
  });
  if (wanted.length === 0) return [];
  if (mode.allTime) stateOf.clear();

  // What each owner's release policy hides is not in their digest (one query for the page's domains).
  const policies = await loadPolicyTable(deps, [...new Set(wanted.map(domainOf))]);
  const rulesOf = new Map(wanted.map((a) => [a, effectiveRules(policies, domainOf(a))]));
  // Recipients without a watermark in one IN list; each one with a watermark, or with hidden types, gets its own bound.
  const fresh = wanted.filter((a) => !stateOf.has(a) && !hiddenCondition(rulesOf.get(a)!)).map((a) => bind(v, 'maddr.email', a));
  const perRecipient: Expression<SqlBool>[] = fresh.length ? [sql<SqlBool>`r.email IN (${sql.join(fresh)})`] : [];
  for (const addr of wanted) {
    const st = stateOf.get(addr);
    const hidden = hiddenCondition(rulesOf.get(addr)!);
    if (!st && !hidden) continue;
    const parts: Expression<SqlBool>[] = [sql<SqlBool>`r.email = ${bind(v, 'maddr.email', addr)}`];
    if (st) {
      const t = Number(st.last_time_num);
      parts.push(sql<SqlBool>`(m.time_num > ${t} OR (m.time_num = ${t} AND m.mail_id > ${bind(v, 'msgs.mail_id', st.last_mail_id)}))`);
    }
    if (hidden) parts.push(hidden);
    perRecipient.push(sql<SqlBool>`(${sql.join(parts, sql` AND `)})`);
  }
  const conds: Expression<SqlBool>[] = [
    sql<SqlBool>`m.quar_type = 'Q'`,
    sql<SqlBool>`m.content IS NOT NULL`,
    sql<SqlBool>`m.time_num < ${ctx.cutoff}`,
    sql<SqlBool>`mr.rs IN (${sql.join(WAITING)})`,
    recipientScope(who, v),
    sql<SqlBool>`(${sql.join(perRecipient, sql` OR `)})`,
    ...domainConditions(ctx, 'r.domain', true),
  ];
  const { rows } = await sql<MessageRow>`SELECT * FROM (
      SELECT r.email AS rcpt, m.partition_tag, m.mail_id, m.time_num, m.content, mr.content AS rcontent, mr.bspam_level,
        m.spam_level, m.subject, s.email AS sender,
        ROW_NUMBER() OVER (PARTITION BY r.email ORDER BY m.time_num DESC, m.mail_id DESC) AS rn,
        COUNT(*) OVER (PARTITION BY r.email) AS total,
        ${kindCount(codesOfTypes(['spam', 'spammy']))} AS n_spam, ${kindCount(['V'])} AS n_virus, ${kindCount(['B'])} AS n_banned
      FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
        JOIN msgs m ON m.partition_tag = mr.partition_tag AND m.mail_id = mr.mail_id
        LEFT JOIN maddr s ON s.id = m.sid
      WHERE ${sql.join(conds, sql` AND `)}
    ) x WHERE x.rn <= ${MAX_LISTED} ORDER BY x.rcpt, x.rn`.execute(deps.db);

  const reasons = await alertReasons(ctx, rows);
  // without amavisd's lookup tables there is no sender list to write: no "always allow sender"
  const listable = deps.variant.lookup.missing.length === 0;
  const out = new Map<string, RecipientDigest>();
  for (const row of rows) {
    const recipient = text(row.rcpt);
    const mailId = text(row.mail_id);
    const code = (row.rcontent ?? '').trim() || (row.content ?? '?').trim() || '?';
    const msg: PlannedMessage = {
      partitionTag: Number(row.partition_tag),
      mailId,
      timeNum: Number(row.time_num),
      contentCode: code,
      subject: text(row.subject),
      sender: text(row.sender),
      score: score(row.bspam_level ?? row.spam_level),
      reason: reasons.get(`${Number(row.partition_tag)}.${mailId}`) ?? '',
      actions: ownerActions(rulesOf.get(recipient) ?? effectiveRules(policies, domainOf(recipient)), policyTypeOf(row.content)).filter(
        // release requests are decided in the deployment's own database only: none from a gateway's digest yet
        (a) => (listable || a !== 'release_allow') && !(deps.gateway && a === 'request'),
      ),
    };
    let d = out.get(recipient);
    if (!d) {
      const st = stateOf.get(recipient);
      d = {
        recipient,
        total: Number(row.total),
        messages: [],
        timeZone: subOf.get(recipient)?.time_zone ?? null,
        kinds: kindsOf(row),
        language: subOf.get(recipient)?.language ?? null,
        from: st ? { time: Number(st.last_time_num), mailId: st.last_mail_id } : null,
        // rn = 1 comes first: the newest message, where the watermark will move to
        to: { time: msg.timeNum, mailId },
      };
      out.set(recipient, d);
    }
    d.messages.push(msg);
  }
  return [...out.values()];
}

/** The condition that leaves out the types a recipient's policy hides (null: it hides none). */
function hiddenCondition(rules: Rules): Expression<SqlBool> | null {
  const hidden = POLICY_TYPES.filter((t) => rules[t] === 'hidden');
  if (hidden.length === 0) return null;
  const { codes, negate } = codesOfPolicyTypes(hidden);
  if (negate) return codes.length ? sql<SqlBool>`m.content IN (${sql.join(codes)})` : sql<SqlBool>`1 = 0`;
  return sql<SqlBool>`m.content NOT IN (${sql.join(codes)})`;
}

function kindsOf(row: MessageRow): NonNullable<RecipientDigest['kinds']> {
  const spam = Number(row.n_spam),
    virus = Number(row.n_virus),
    banned = Number(row.n_banned);
  return { spam, virus, banned, other: Math.max(0, Number(row.total) - spam - virus - banned) };
}

const ALERT_TYPES = new Set(['virus', 'banned', 'bad-header', 'bad-mime']);

/** The start of the stored text of the page's virus/banned/bad-header mail, for X-Amavis-Alert. */
export async function alertReasons(
  ctx: PlanContext,
  rows: Array<Pick<MessageRow, 'content' | 'mail_id' | 'partition_tag'>>,
): Promise<Map<string, string>> {
  const v = ctx.deps.variant;
  const keys = new Map<string, { p: number; id: string }>();
  for (const r of rows) {
    if (!ALERT_TYPES.has(typeOfCode((r.content ?? '').trim()))) continue;
    const id = text(r.mail_id);
    keys.set(`${Number(r.partition_tag)}.${id}`, { p: Number(r.partition_tag), id });
  }
  const out = new Map<string, string>();
  if (keys.size === 0) return out;
  const pairs = [...keys.values()].map((k) => sql<SqlBool>`(partition_tag = ${k.p} AND mail_id = ${bind(v, 'quarantine.mail_id', k.id)})`);
  const head = v.dialect === 'mysql' ? sql`SUBSTRING(mail_text, 1, 8192)` : sql`substring(mail_text from 1 for 8192)`;
  const { rows: chunks } = await sql<{ partition_tag: number; mail_id: unknown; head: unknown }>`
    SELECT partition_tag, mail_id, ${head} AS head FROM quarantine
    WHERE chunk_ind = 1 AND (${sql.join(pairs, sql` OR `)})`.execute(ctx.deps.db);
  for (const c of chunks) out.set(`${Number(c.partition_tag)}.${text(c.mail_id)}`, reasonFromHeaders(text(c.head)));
  return out;
}
