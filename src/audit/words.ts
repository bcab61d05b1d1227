/**
 * An audit row in words, for the audit page and its CSV: who acted, what they did, and how it
 * ended (amavisd's reply for each recipient of a release). Plain text: the page escapes it.
 */
import type { AuditAction } from './audit.ts';
import type { AuditEntryView } from './list.ts';

const ACTIONS: Record<AuditAction, string> = {
  release: 'Released',
  release_override: 'Released to other addresses',
  mark_released: 'Marked released (not delivered)',
  delete: 'Deleted',
  release_request: 'Asked for release',
  release_request_approve: 'Approved a release request',
  release_request_deny: 'Denied a release request',
  release_request_expire: 'Release request expired (message removed)',
  release_policy: 'Changed a release policy',
  report_spam: 'Reported as spam',
  report_ham: 'Reported as not spam',
  'sender_list.add': 'Added to a sender list',
  'sender_list.remove': 'Removed from a sender list',
  'policy.assign': 'Assigned a policy',
  'policy.update': 'Changed a policy',
  digest_subscription: 'Changed digest settings',
  'admin_digest.create': 'Subscribed an address to an admin digest',
  'admin_digest.update': 'Changed an admin digest',
  'admin_digest.delete': 'Ended an admin digest',
  'key.create': 'Created an API key',
  'key.update': 'Changed an API key',
  'key.revoke': 'Revoked an API key',
  'webhook.create': 'Added a webhook',
  'webhook.delete': 'Removed a webhook',
  'gateway.create': 'Registered a gateway',
  'gateway.update': 'Changed a gateway',
  'gateway.delete': 'Removed a gateway',
  'gateway.rekey': "Sealed a gateway's secrets with the current key",
};

/** The actions with words, in the order the page's filter offers them. */
export const AUDIT_ACTION_WORDS = Object.entries(ACTIONS).map(([action, words]) => ({ action, words }));

const BY_NAME: Record<string, string> = ACTIONS;

export function actionWords(action: string): string {
  return BY_NAME[action] ?? action;
}

const ROLES: Record<string, string> = { admin: 'admin', domain_admin: 'domain admin', user: 'mailbox owner' };

/** "key “ops” (admin)", "ann@example.com (mailbox owner, portal)", "digest job (admin)". */
export function actorWords(e: Pick<AuditEntryView, 'actor' | 'actor_role' | 'key'>): string {
  const role = ROLES[e.actor_role] ?? e.actor_role;
  const a = e.actor;
  let who: string;
  if (a.startsWith('portal:')) who = `${a.slice(7)} (portal`;
  else if (a.startsWith('link:')) who = `${a.slice(5)} (digest link`;
  else if (a === 'bootstrap-admin') who = 'bootstrap admin key (';
  else if (a === 'digest') who = 'digest job (';
  else if (a === 'retention') who = 'retention job (';
  else if (a === 'resend-webhook') who = 'Resend delivery events (';
  else if (e.key) who = `key “${e.key.name ?? e.key.id}” (`;
  else who = `${a} (`;
  return `${who}${who.endsWith('(') ? '' : ', '}${role})`;
}

const RESULTS: Record<string, string> = {
  ok: 'done',
  partial: 'partly done',
  failed: 'failed',
  pending: 'sent to amavisd, no answer recorded yet',
  unknown: 'outcome unknown (amavisd’s answer was lost)',
};

export function resultWords(result: string): string {
  return RESULTS[result] ?? result;
}

interface RecipientResult {
  recipient: string;
  released?: boolean;
  reply?: string;
}

const isRecipientResult = (x: unknown): x is RecipientResult =>
  !!x && typeof x === 'object' && typeof (x as { recipient?: unknown }).recipient === 'string';

/**
 * The detail in words: a release's per-recipient results ("ann@…: released — 250 2.0.0 Ok"), an
 * error's text, or the detail's fields as "name: value" (a value cut at 200 characters).
 */
export function detailWords(detail: unknown): string[] {
  if (detail === null || detail === undefined || detail === '') return [];
  if (typeof detail === 'string') return [cut(detail)];
  if (Array.isArray(detail)) {
    return detail.map((d) =>
      isRecipientResult(d)
        ? `${d.recipient}: ${d.released === true ? 'released' : d.released === false ? 'not released' : ''}${d.reply ? ` — amavisd: ${cut(d.reply)}` : ''}`
        : cut(JSON.stringify(d)),
    );
  }
  if (typeof detail === 'object') {
    return Object.entries(detail as Record<string, unknown>)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k.replace(/_/g, ' ')}: ${cut(typeof v === 'string' ? v : JSON.stringify(v))}`);
  }
  return [String(detail)];
}

const cut = (s: string) => (s.length > 200 ? `${s.slice(0, 200)}…` : s);
