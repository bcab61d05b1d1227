import { domainOf } from '../amavis/address.ts';
import { parseItemId, type MailKey } from '../amavis/mail-id.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { isConnectionError } from '../db/errors.ts';
import { AppError } from '../errors.ts';
import { deleteMessage, type DeleteResult } from './delete.ts';
import { enabledSubscriptions } from '../webhooks/events.ts';
import { releaseMessage, type ReleaseResult, type SharedReads } from './release.ts';
import { rulesForMailbox } from './release-policy.ts';
import { loadTarget, type ActionTarget } from './target.ts';
import { releaseInBatches } from './bulk-release.ts';

/** A list's recipient filter (normalized as the list's): an action under it reaches only these. */
export interface RecipientFilter {
  recipient?: string;
  domain?: string;
}

export function inFilter(address: string, only: RecipientFilter): boolean {
  if (only.recipient !== undefined && address !== only.recipient) return false;
  if (only.domain !== undefined && domainOf(address).toLowerCase() !== only.domain.toLowerCase()) return false;
  return true;
}

/**
 * The pending recipients of one message that the filter names, in the caller's scope: a filtered
 * view acts on what it shows, never on the same message's copies for other recipients or domains.
 * With the target they were chosen from, which the verb then acts on (it is not read a second time).
 */
export async function filteredRecipients(deps: Deps, who: Identity, key: MailKey, only: RecipientFilter, action: BulkInput['action']) {
  const target = await loadTarget(deps, who, key);
  return { target, recipients: pendingInFilter(target, only, action) };
}

function pendingInFilter(target: ActionTarget, only: RecipientFilter, action: BulkInput['action']): string[] {
  const chosen = target.recipients.filter((r) => r.status === 'pending' && inFilter(r.address, only)).map((r) => r.address);
  if (chosen.length === 0) {
    throw new AppError(
      action === 'release' ? 'nothing_to_release' : 'nothing_to_delete',
      'no pending recipient of this message matches the filter (recipient or recipient domain)',
    );
  }
  return chosen;
}

export interface BulkInput {
  action: 'release' | 'delete';
  ids: string[];
  allowSender?: boolean;
  blockSender?: boolean;
  /** release: the caller means to release virus or banned mail too */
  confirmDangerous?: boolean;
  /** act only on each message's pending recipients this filter names (a filtered list's bulk) */
  only?: RecipientFilter;
}

export interface BulkItemResult {
  id: string;
  status: number;
  result?: ReleaseResult | DeleteResult;
  /** `extra`: what the error carries besides (an unknown release: its recipients, amavisd's results) */
  error?: { code: string; detail: string; [k: string]: unknown };
}

/**
 * Whether a bulk release is pipelined in batches (src/quarantine/bulk-release.ts: its claims and
 * settlements write msgrcpt and the audit and attempt rows in one transaction, so they need them in
 * one database). Otherwise each id is released on its own (releaseMessage), by the workers below.
 */
const batchesReleases = (deps: Deps) => !deps.stateApart; // apart: each id in steps (src/quarantine/release-apart.ts)

/**
 * Ids worked on at once by a bulk delete (and a bulk release not in batches). Such a release holds
 * an AM.PDP slot only for its claim and amavisd's exchange, so it works on twice as many ids as
 * there are slots, to keep every slot busy while some ids are read or settled.
 */
const CONCURRENCY = 4;
const concurrencyOf = (deps: Deps, action: BulkInput['action']) =>
  action === 'release' ? Math.max(CONCURRENCY, 2 * deps.config.AMAVISD_PDP_CONCURRENCY) : CONCURRENCY;

/**
 * One id's failure as its own result: a bulk never fails as a whole for one id. A database error
 * for one id (a lost connection, a refused write) is that id's 503 / 500; the log has the details.
 */
function failure(deps: Deps, id: string, err: unknown): BulkItemResult {
  if (err instanceof AppError) {
    const { retryAfter: _r, field: _f, ...extra } = err.extra;
    return { id, status: err.status, error: { ...extra, code: err.code, detail: err.message } };
  }
  const e = err as Error;
  if (isConnectionError(err)) {
    deps.log.warn('bulk: database unavailable for one id', { id, message: e.message });
    return {
      id,
      status: 503,
      error: {
        code: 'database_unavailable',
        detail: 'the database is not reachable; nothing was changed for this id unless its audit says otherwise',
      },
    };
  }
  deps.log.error('bulk: unexpected error for one id', { id, error: e.name, message: e.message, stack: e.stack });
  return {
    id,
    status: 500,
    error: { code: 'internal', detail: 'an unexpected error occurred for this id; see the audit log and the server log' },
  };
}

/**
 * `read`, shared by every id of one bulk: read again once the last read is older than `ms` (a
 * release used to read the same rows once per id; a webhook created during a bulk still gets its
 * events from the next second on). A failed read is not kept.
 */
function freshFor<T>(deps: Deps, ms: number, read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | null = null;
  return () => {
    const now = deps.clock.now();
    if (!last || now - last.at > ms) {
      const value = read();
      const entry = { at: now, value };
      last = entry;
      value.catch(() => {
        if (last === entry) last = null;
      });
    }
    return last.value;
  };
}

export async function runBulk(deps: Deps, who: Identity, input: BulkInput): Promise<BulkItemResult[]> {
  const ids = [...new Set(input.ids)];
  const shared: SharedReads = {
    subscriptions: freshFor(deps, 1000, () => enabledSubscriptions(deps.state)),
    ...(who.role === 'user' ? { ownerRules: freshFor(deps, 1000, () => rulesForMailbox(deps, who.mailbox)) } : {}),
  };
  if (input.action === 'release' && batchesReleases(deps)) {
    const only = input.only;
    const recipientsOf = only ? (target: ActionTarget) => pendingInFilter(target, only, 'release') : undefined;
    return releaseInBatches(deps, who, input, ids, shared, recipientsOf, (id, err) => failure(deps, id, err));
  }
  const out: BulkItemResult[] = new Array(ids.length);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      const id = ids[i]!;
      try {
        const key = parseItemId(id, deps.gateway);
        if (!key)
          throw new AppError('invalid_field', 'not a quarantine id (<partition_tag>.<mail_id>, e.g. 0.hZbBr1WxS3sy)', { field: 'ids' });
        const filtered = input.only ? await filteredRecipients(deps, who, key, input.only, input.action) : undefined;
        const recipients = filtered?.recipients;
        if (input.action === 'release') {
          const result = await releaseMessage(deps, who, {
            key,
            allowSender: input.allowSender,
            confirmDangerous: input.confirmDangerous,
            recipients,
            target: filtered?.target,
            shared,
          });
          out[i] = { id, status: result.status === 'released' ? 200 : result.status === 'partial' ? 207 : 502, result };
        } else {
          out[i] = {
            id,
            status: 200,
            result: await deleteMessage(deps, who, { key, blockSender: input.blockSender, recipients, target: filtered?.target }),
          };
        }
      } catch (err) {
        out[i] = failure(deps, id, err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrencyOf(deps, input.action), ids.length) }, worker));
  return out;
}
