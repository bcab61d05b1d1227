import { sql, type RawBuilder } from 'kysely';
import { bind, text, type SchemaVariant } from '../amavis/schema.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import type { RecipientForm } from './forms.ts';

type Db = Deps['db'];

/**
 * The name of the policy row that stands for "no policy" where the schema forbids policy_id 0.
 * Every amavisd column of it is NULL, which amavisd treats exactly like a missing policy.
 */
export const INHERIT_POLICY = 'inherit';

/** Insert unless the unique key already holds the row (concurrent writers lose quietly). */
function insertIgnore(v: SchemaVariant, table: string, columns: string[], values: unknown[], conflict: string): RawBuilder<unknown> {
  const cols = sql.raw(columns.join(', '));
  const vals = sql.join(values.map((x) => sql`${x}`));
  return v.dialect === 'mysql'
    ? sql`INSERT INTO ${sql.table(table)} (${cols}) VALUES (${vals}) ON DUPLICATE KEY UPDATE id = id`
    : sql`INSERT INTO ${sql.table(table)} (${cols}) VALUES (${vals}) ON CONFLICT (${sql.raw(conflict)}) DO NOTHING`;
}

export async function findUser(db: Db, v: SchemaVariant, key: string): Promise<{ id: number; policy_id: number } | null> {
  const { rows } = await sql<{ id: number | string; policy_id: number | string }>`
    SELECT id, policy_id FROM users WHERE email = ${bind(v, 'users.email', key)}`.execute(db);
  return rows[0] ? { id: Number(rows[0].id), policy_id: Number(rows[0].policy_id) } : null;
}

/**
 * The policy_id a users row gets when we create it only to hang list entries on it.
 *
 * iRedMail's convention (iRedAdmin/iRedAPD create_user): policy_id 0, "not linked to any policy".
 * amavisd joins `users LEFT JOIN policy` and takes each field from the first matching row where it
 * is not NULL, so such a row changes nothing about the recipient's policy: the more general rows
 * (its domain, then '@.' with the global policy) and the static config still decide. Pointing it at
 * the global policy instead would shadow a domain policy for that mailbox.
 *
 * Upstream's PostgreSQL schema declares users.policy_id REFERENCES policy(id), so 0 is impossible
 * there: we use (once created) a policy row named 'inherit' whose columns are all NULL, which
 * amavisd reads exactly like no policy.
 */
export async function policyForNewUser(db: Db, v: SchemaVariant): Promise<number> {
  if (v.name !== 'pg-upstream') return 0;
  const find = async () =>
    (await sql<{ id: number | string }>`SELECT min(id) AS id FROM policy WHERE policy_name = ${INHERIT_POLICY}`.execute(db)).rows[0]?.id;
  const found = await find();
  if (found !== null && found !== undefined) return Number(found);
  await sql`INSERT INTO policy (policy_name) VALUES (${INHERIT_POLICY})`.execute(db);
  return Number(await find());
}

/** The users row for a recipient form, created when missing (priority by form, see forms.ts). */
export async function ensureUser(
  db: Db,
  v: SchemaVariant,
  r: RecipientForm,
  policyId?: number,
): Promise<{ id: number; policy_id: number; created: boolean }> {
  const existing = await findUser(db, v, r.key);
  if (existing) return { ...existing, created: false };
  const pid = policyId ?? (await policyForNewUser(db, v));
  await insertIgnore(v, 'users', ['email', 'priority', 'policy_id'], [bind(v, 'users.email', r.key), r.priority, pid], 'email').execute(db);
  const row = await findUser(db, v, r.key);
  if (!row) throw new Error('users row vanished right after insert');
  return { ...row, created: true };
}

export async function findSender(db: Db, v: SchemaVariant, key: string): Promise<number | null> {
  const { rows } = await sql<{ id: number | string }>`SELECT id FROM mailaddr WHERE email = ${bind(v, 'mailaddr.email', key)}`.execute(db);
  return rows[0] ? Number(rows[0].id) : null;
}

export async function ensureSender(db: Db, v: SchemaVariant, key: string, priority: number): Promise<number> {
  const existing = await findSender(db, v, key);
  if (existing !== null) return existing;
  await insertIgnore(v, 'mailaddr', ['email', 'priority'], [bind(v, 'mailaddr.email', key), priority], 'email').execute(db);
  const id = await findSender(db, v, key);
  if (id === null) throw new Error('mailaddr row vanished right after insert');
  return id;
}

/** users.email as text, for LIKE on every variant (bytea on PostgreSQL; varbinary compares bytes on MySQL). */
export function usersEmailText(v: SchemaVariant, ref: string): RawBuilder<string> {
  const r = sql.ref(ref);
  return v.dialect === 'postgres' && v.binary.has('users.email') ? sql<string>`encode(${r}, 'escape')` : sql<string>`${r}`;
}

/**
 * The users rows (alias `u`) a caller may manage: admins all; domain admins '@d' and 'x@d' for
 * their domains d (never '@.'); users their own mailbox row only.
 */
export function usersScope(who: Identity, v: SchemaVariant, alias = 'u'): RawBuilder<boolean> {
  const email = sql.ref(`${alias}.email`);
  if (who.role === 'admin') return sql<boolean>`1 = 1`;
  if (who.role === 'user') return sql<boolean>`${email} = ${bind(v, 'users.email', who.mailbox)}`;
  if (who.domains.length === 0) return sql<boolean>`1 = 0`;
  const t = usersEmailText(v, `${alias}.email`);
  return sql<boolean>`(${sql.join(
    who.domains.map((d) => sql`(${email} = ${bind(v, 'users.email', `@${d}`)} OR ${t} LIKE ${`%@${d}`})`),
    sql` OR `,
  )})`;
}

/** May `who` manage entries / assignments for this recipient form? */
export function canManageRecipient(who: Identity, r: RecipientForm): boolean {
  if (who.role === 'admin') return true;
  if (r.kind === 'global') return false;
  if (who.role === 'user') return r.kind === 'mailbox' && r.key === who.mailbox;
  return r.domain !== null && who.domains.includes(r.domain);
}

export { text };
