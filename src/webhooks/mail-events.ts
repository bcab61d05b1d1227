import { sql } from 'kysely';
import { domainOf } from '../amavis/address.ts';
import { typeOfCode } from '../amavis/codes.ts';
import { publicItemId, type MailKey } from '../amavis/mail-id.ts';
import { bind, text } from '../amavis/schema.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { score } from '../quarantine/item.ts';
import { emitEvent, type EventType, type Subscriptions } from './events.ts';

/** What a mail event needs; `db` and `stateApart` when the state database is apart from amavisd's. */
type MailEventDeps = Pick<Deps, 'clock' | 'variant'> & Partial<Pick<Deps, 'db' | 'stateApart' | 'gateway'>>;

export interface MailEventRecipient {
  address: string;
  released?: boolean;
  reply?: string | null;
}

/**
 * The mail as an event names it: id, type, subject, sender, score and the recipients the action
 * touched. Never secret_id, never the message text.
 */
async function mailSummary(trx: Deps['db'], deps: MailEventDeps, key: MailKey) {
  // the event is written in the state database's transaction; the mail is amavisd's (apart: its own database)
  const reader = deps.stateApart && deps.db ? deps.db : trx;
  const { rows } = await sql<{ content: string | null; subject: unknown; spam_level: number | string | null; sender: unknown }>`
    SELECT m.content, m.subject, m.spam_level, s.email AS sender
    FROM msgs m LEFT JOIN maddr s ON s.id = m.sid
    WHERE m.partition_tag = ${key.partitionTag} AND m.mail_id = ${bind(deps.variant, 'msgs.mail_id', key.mailId)}`.execute(reader);
  const m = rows[0];
  const content = (m?.content ?? '?').trim() || '?';
  return {
    id: publicItemId(deps.gateway ?? '', key),
    type: typeOfCode(content),
    subject: text(m?.subject),
    sender: text(m?.sender),
    score: score(m?.spam_level ?? null),
  };
}

/** Emit one quarantine.* event for an action on a message, inside the action's transaction. */
export async function emitMailEvent(
  trx: Deps['db'],
  deps: MailEventDeps,
  who: Identity,
  type: EventType,
  key: MailKey,
  recipients: MailEventRecipient[],
  extra: Record<string, unknown> = {},
  subs?: Subscriptions | null,
): Promise<string | null> {
  if (recipients.length === 0) return null;
  return emitEvent(
    trx,
    deps,
    {
      type,
      domains: recipients.map((r) => domainOf(r.address)),
      gateway: deps.gateway ?? '',
      data: async () => ({
        mail: { ...(await mailSummary(trx, deps, key)), recipients },
        actor: { name: who.actor, role: who.role },
        ...(deps.gateway ? { gateway: deps.gateway } : {}),
        ...extra,
      }),
    },
    subs,
  );
}

/** A release's outcome: released recipients in one event, refused ones in another. */
export async function emitReleaseEvents(
  trx: Deps['db'],
  deps: MailEventDeps,
  who: Identity,
  key: MailKey,
  results: Array<{ recipient: string; released: boolean; reply: string | null }>,
  error?: string,
  subs?: Subscriptions | null,
): Promise<void> {
  const as = (r: (typeof results)[number]) => ({ address: r.recipient, released: r.released, reply: r.reply });
  await emitMailEvent(trx, deps, who, 'quarantine.released', key, results.filter((r) => r.released).map(as), {}, subs);
  await emitMailEvent(
    trx,
    deps,
    who,
    'quarantine.release_failed',
    key,
    results.filter((r) => !r.released).map(as),
    error ? { error } : {},
    subs,
  );
}

/** sender_list.changed: one allow/block entry added, moved between lists, or removed. */
export async function emitSenderListEvent(
  trx: Deps['db'],
  deps: Pick<Deps, 'clock' | 'gateway'>,
  who: Identity,
  e: { recipient: string; domain: string | null; sender: string; list: string; change: 'created' | 'updated' | 'removed' },
): Promise<string | null> {
  return emitEvent(trx, deps, {
    type: 'sender_list.changed',
    domains: e.domain ? [e.domain] : [],
    gateway: deps.gateway,
    data: {
      recipient: e.recipient,
      sender: e.sender,
      list: e.list,
      change: e.change,
      actor: { name: who.actor, role: who.role },
      ...(deps.gateway ? { gateway: deps.gateway } : {}),
    },
  });
}
