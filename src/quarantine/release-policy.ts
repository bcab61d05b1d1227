import { sql, type RawBuilder } from 'kysely';
import { CONTENT_TYPES, type ContentType } from '../amavis/codes.ts';
import { domainOf, normalizeDomain } from '../amavis/address.ts';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';

/**
 * Who may release what (issue 18): what a mailbox OWNER (role `user`: their API key, the portal,
 * digest links) may do with their copy of each content type. Admins and domain admins are not
 * limited by it, but virus and banned mail needs their explicit confirmation.
 */
export const POLICY_TYPES = ['spam', 'spammy', 'virus', 'banned', 'bad-header', 'bad-mime', 'oversized', 'other'] as const;
export type PolicyType = (typeof POLICY_TYPES)[number];

/** release: as before; request: they ask, an admin decides; none: they see it only; hidden: not even that (404). */
export const OWNER_ACTIONS = ['release', 'request', 'none', 'hidden'] as const;
export type OwnerAction = (typeof OWNER_ACTIONS)[number];
export type Rules = Record<PolicyType, OwnerAction>;

/**
 * Without any row: today's behaviour (release) except for the two types that can harm the
 * mailbox. `other` (unchecked, mta-error, clean and unknown codes) keeps today's behaviour.
 */
export const DEFAULT_RULES: Readonly<Rules> = {
  spam: 'release',
  spammy: 'release',
  virus: 'request',
  banned: 'request',
  'bad-header': 'release',
  'bad-mime': 'release',
  oversized: 'release',
  other: 'release',
};

/** Types whose release by an admin or domain admin needs `confirm_dangerous`. */
export const DANGEROUS: ReadonlySet<PolicyType> = new Set(['virus', 'banned']);

/** The key of the global row (a domain name never is '*'). */
export const GLOBAL = '*';

const NAMED: Record<Exclude<PolicyType, 'other'>, ContentType> = {
  spam: 'spam',
  spammy: 'spammy',
  virus: 'virus',
  banned: 'banned',
  'bad-header': 'bad-header',
  'bad-mime': 'bad-mime',
  oversized: 'oversized',
};

/** amavisd's content code (src/amavis/codes.ts) as a policy type: the codes not named are `other`. */
export function policyTypeOf(code: string | null | undefined): PolicyType {
  const c = (code ?? '').trim();
  for (const [type, name] of Object.entries(NAMED)) {
    if ((CONTENT_TYPES[name] as readonly string[]).includes(c)) return type as PolicyType;
  }
  return 'other';
}

/** The same mapping in SQL, over a content column: what the hidden rule compares to. */
function policyTypeSql(column: string): RawBuilder<string> {
  const whens = Object.entries(NAMED).flatMap(([type, name]) =>
    CONTENT_TYPES[name].map((code) => sql`WHEN ${sql.lit(code)} THEN ${sql.lit(type)}`),
  );
  return sql<string>`CASE ${sql.ref(column)} ${sql.join(whens, sql` `)} ELSE 'other' END`;
}

/** The content codes of these policy types (`other`: every code the named types do not use). */
export function codesOfPolicyTypes(types: readonly PolicyType[]): { codes: string[]; negate: boolean } {
  const named = types.filter((t): t is Exclude<PolicyType, 'other'> => t !== 'other').flatMap((t) => [...CONTENT_TYPES[NAMED[t]]]);
  if (!types.includes('other')) return { codes: named, negate: false };
  // `other` is open-ended: say which codes are NOT in the set instead
  const rest = POLICY_TYPES.filter((t): t is Exclude<PolicyType, 'other'> => t !== 'other' && !types.includes(t)).flatMap((t) => [
    ...CONTENT_TYPES[NAMED[t]],
  ]);
  return { codes: rest, negate: true };
}

export interface PolicyTable {
  global: Partial<Rules>;
  domains: Map<string, Partial<Rules>>;
}

/**
 * The rows for the global rule and the given domains (all domains when none are given), of the
 * request's gateway: a registered gateway's owners are governed by its own rows only (migration 0023).
 */
export async function loadPolicyTable(deps: Deps, domains?: readonly string[]): Promise<PolicyTable> {
  let q = deps.state
    .selectFrom('qe_release_policies')
    .select(['domain', 'content_type', 'owner_action'])
    .where('gateway_id', '=', deps.gateway);
  if (domains) q = q.where('domain', 'in', [GLOBAL, ...domains]);
  const rows = await q.execute();
  const out: PolicyTable = { global: {}, domains: new Map() };
  for (const r of rows) {
    if (!(POLICY_TYPES as readonly string[]).includes(r.content_type) || !(OWNER_ACTIONS as readonly string[]).includes(r.owner_action))
      continue;
    const rules = r.domain === GLOBAL ? out.global : (out.domains.get(r.domain) ?? out.domains.set(r.domain, {}).get(r.domain)!);
    rules[r.content_type as PolicyType] = r.owner_action as OwnerAction;
  }
  return out;
}

/** A domain's override, over the global rule, over the defaults. */
export function effectiveRules(table: PolicyTable, domain: string | null): Rules {
  return { ...DEFAULT_RULES, ...table.global, ...(domain ? table.domains.get(domain) : undefined) };
}

export async function rulesForMailbox(deps: Deps, mailbox: string): Promise<Rules> {
  const domain = domainOf(mailbox);
  return effectiveRules(await loadPolicyTable(deps, [domain]), domain);
}

/**
 * The one-click actions a digest offers the owner for a message of this type (and that the link
 * pages accept): hidden mail is not in the digest at all.
 */
export type OwnerLinkAction = 'release' | 'release_allow' | 'request' | 'delete';
export function ownerActions(rules: Rules, type: PolicyType): OwnerLinkAction[] {
  switch (rules[type]) {
    case 'release':
      return ['release', 'release_allow', 'delete'];
    case 'request':
      return ['request', 'delete'];
    case 'none':
      return ['delete'];
    case 'hidden':
      return [];
  }
}

/**
 * The condition, on a message row's content column, that hides from a mailbox owner what the
 * policy of their domain says is `hidden`; true for everyone else. In SQL (a probe of the small
 * policy table), so that every query scoped to an owner obeys it without a step that could be left out.
 */
export function ownerVisible(who: Identity, column = 'm.content', gateway = ''): RawBuilder<boolean> {
  if (who.role !== 'user') return sql<boolean>`1 = 1`;
  const domain = domainOf(who.mailbox);
  return sql<boolean>`NOT EXISTS (SELECT 1 FROM qe_release_policies qp
    WHERE qp.gateway_id = ${gateway} AND qp.owner_action = 'hidden' AND qp.content_type = ${policyTypeSql(column)}
      AND (qp.domain = ${domain} OR (qp.domain = ${GLOBAL} AND NOT EXISTS (
        SELECT 1 FROM qe_release_policies qd
        WHERE qd.gateway_id = ${gateway} AND qd.domain = ${domain} AND qd.content_type = qp.content_type))))`;
}

/**
 * ownerVisible for a state database apart from amavisd's (STATE_DATABASE_URL): the policy table is
 * not in the database the condition runs in, so the owner's hidden types are read first (two reads,
 * one small) and named in the condition. The same rows decide as in ownerVisible: a domain's rule,
 * else the global one (no default is 'hidden').
 */
export async function ownerVisibleApart(deps: Deps, who: Identity, column = 'm.content'): Promise<RawBuilder<boolean>> {
  if (who.role !== 'user') return sql<boolean>`1 = 1`;
  const rules = await rulesForMailbox(deps, who.mailbox);
  const hidden = POLICY_TYPES.filter((t) => rules[t] === 'hidden');
  if (hidden.length === 0) return sql<boolean>`1 = 1`;
  return sql<boolean>`${policyTypeSql(column)} NOT IN (${sql.join(hidden.map((t) => sql.lit(t)))})`;
}

/** ownerVisible, or with a state database apart ownerVisibleApart (its policy rows read first). */
export function ownerVisibleFor(deps: Deps, who: Identity, column = 'm.content'): Promise<RawBuilder<boolean>> {
  return deps.stateApart ? ownerVisibleApart(deps, who, column) : Promise.resolve(ownerVisible(who, column, deps.gateway));
}

/**
 * Checked by the release verb before anything is claimed or sent: an owner only where the policy
 * says `release`; an admin or domain admin of virus or banned mail only with `confirm_dangerous`.
 */
export async function assertMayRelease(
  deps: Deps,
  who: Identity,
  id: string,
  contentCode: string,
  confirmDangerous: boolean | undefined,
  /** the caller's rules when already read (a bulk reads them once); unset: read here */
  ownerRules?: () => Promise<Rules>,
): Promise<void> {
  const type = policyTypeOf(contentCode);
  if (who.role === 'user') {
    const action = (await (ownerRules ? ownerRules() : rulesForMailbox(deps, who.mailbox)))[type];
    if (action === 'release') return;
    // 'hidden' never gets here: the scope query already answered 404
    throw new AppError(
      'release_not_allowed',
      action === 'request'
        ? `${type} mail is not released by its owner: request a release (POST /v1/quarantine/${id}/release-requests); an administrator decides`
        : `${type} mail is not released by its owner: ask your administrator`,
      { content_type: type, allowed: action },
    );
  }
  if (DANGEROUS.has(type) && confirmDangerous !== true) {
    throw new AppError('confirmation_required', `this is ${type} mail: releasing it needs confirm_dangerous: true`, {
      field: 'confirm_dangerous',
    });
  }
}

export interface PolicyView {
  defaults: Rules;
  global: Rules;
  domains: Array<{ domain: string; overrides: Partial<Rules>; effective: Rules }>;
}

/** What the caller may see: admins every override; domain admins each of their domains (overridden or not); owners 404. */
export async function getReleasePolicies(deps: Deps, who: Identity): Promise<PolicyView> {
  if (who.role === 'user') throw new AppError('not_found', 'no such route');
  const table = await loadPolicyTable(deps, who.role === 'admin' ? undefined : who.domains);
  const names = who.role === 'admin' ? [...table.domains.keys()] : [...new Set(who.domains)];
  const domains = names.sort().map((domain) => ({
    domain,
    overrides: table.domains.get(domain) ?? {},
    effective: effectiveRules(table, domain),
  }));
  return { defaults: { ...DEFAULT_RULES }, global: effectiveRules(table, null), domains };
}

/** `domain`: null for the global rule. Out of scope: 404 (a domain admin's other domains), 403 (the global rule). */
function target(who: Identity, domain: string | null): string {
  if (who.role === 'user') throw new AppError('not_found', 'no such route');
  if (domain === null) {
    if (who.role !== 'admin')
      throw new AppError('forbidden', "the global release policy is for admins; set your domain's override instead");
    return GLOBAL;
  }
  const d = normalizeDomain(domain);
  if (!d) throw new AppError('invalid_field', 'domain: not a domain name', { field: 'domain' });
  if (who.role === 'domain_admin' && !who.domains.includes(d)) throw new AppError('not_found', 'no such domain in your scope');
  return d;
}

/**
 * Replace the global rule or a domain's override with `rules` (a type left out: the default,
 * for a domain the global rule), in one transaction with its audit row.
 */
export async function putReleasePolicy(deps: Deps, who: Identity, domain: string | null, rules: Partial<Rules>): Promise<PolicyView> {
  const key = target(who, domain);
  const now = Math.floor(deps.clock.now() / 1000);
  await deps.state.transaction().execute(async (trx) => {
    await trx.deleteFrom('qe_release_policies').where('gateway_id', '=', deps.gateway).where('domain', '=', key).execute();
    const rows = Object.entries(rules).map(([type, action]) => ({
      gateway_id: deps.gateway,
      domain: key,
      content_type: type,
      owner_action: action as string,
      updated_at: now,
      updated_by: who.actor.slice(0, 512),
    }));
    if (rows.length) await trx.insertInto('qe_release_policies').values(rows).execute();
    await recordAudit(trx, deps.clock, who, {
      action: 'release_policy',
      result: 'ok',
      ...(key === GLOBAL ? {} : { recipients: [`@${key}`] }),
      detail: JSON.stringify({ domain: key, rules }),
    });
  });
  return getReleasePolicies(deps, who);
}

export async function deleteReleasePolicy(deps: Deps, who: Identity, domain: string): Promise<void> {
  const key = target(who, domain);
  await deps.state.transaction().execute(async (trx) => {
    const res = await trx
      .deleteFrom('qe_release_policies')
      .where('gateway_id', '=', deps.gateway)
      .where('domain', '=', key)
      .executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new AppError('not_found', 'this domain has no override');
    await recordAudit(trx, deps.clock, who, {
      action: 'release_policy',
      result: 'ok',
      recipients: [`@${key}`],
      detail: JSON.stringify({ domain: key, rules: null }),
    });
  });
}

/**
 * What the release buttons of a page may offer `who` for mail of this content code: `release`,
 * `confirm` (admins, virus or banned: a confirmation step first), or the owner's `request` / `none`.
 */
export type ReleaseMode = 'release' | 'confirm' | 'request' | 'none';
export async function releaseMode(deps: Deps, who: Identity, contentCode: string): Promise<ReleaseMode> {
  const type = policyTypeOf(contentCode);
  if (who.role !== 'user') return DANGEROUS.has(type) ? 'confirm' : 'release';
  const action = (await rulesForMailbox(deps, who.mailbox))[type];
  return action === 'release' ? 'release' : action === 'request' ? 'request' : 'none';
}
