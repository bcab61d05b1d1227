import type { Words } from '../digest/wording.ts';

/**
 * What a page says after an action on the quarantine, by the code the action redirects with.
 * Admins and domain admins read the operator's words (which part failed: amavisd, the relay);
 * mailbox owners read their catalog's plain words (README: Languages), never "amavisd" or "scope".
 */
const ADMIN_NOTICES: Record<string, string> = {
  released: 'Released: amavisd delivered the message.',
  released_allowed: 'Released: amavisd delivered the message, and the sender is now always allowed for its recipients.',
  partial: 'Released to some recipients only; see the statuses below.',
  release_failed: 'amavisd did not release the message; nothing was delivered.',
  nothing_to_release: 'Nothing left to release: already released, deleted, or a release is in progress.',
  release_not_configured: 'Release is not configured on this server (AMAVISD_PDP or RELAY_URL).',
  upstream_unreachable: 'amavisd could not be reached; nothing was released. Try again shortly.',
  release_outcome_unknown:
    'amavisd did not confirm the release: it may or may not have been delivered. The copy stays "releasing" until an administrator resolves it.',
  amavisd_busy: 'amavisd is busy with other releases; nothing was sent. Try again in a few seconds.',
  nothing_to_delete: 'Nothing left to delete: already released or deleted.',
  marked_released: 'Marked released (nothing was delivered by this action).',
  deleted: 'Deleted.',
  deleted_blocked: 'Deleted, and the sender is now blocked for its recipients.',
  confirmation_required: 'This is virus or banned mail: tick the confirmation box to release it.',
  requested: 'Release requested: an administrator decides.',
};

/** The same results as catalog keys (most are the action pages' own sentences, act.*). */
const OWNER_NOTICES: Record<string, string> = {
  released: 'act.released.message',
  released_allowed: 'act.released_allowed.message',
  partial: 'page.result.partial',
  release_failed: 'act.release_failed.message',
  nothing_to_release: 'act.nothing.message',
  release_not_configured: 'act.failed.other',
  upstream_unreachable: 'act.failed.server',
  release_outcome_unknown: 'act.unknown.message',
  amavisd_busy: 'act.failed.server',
  nothing_to_delete: 'act.nothing.message',
  deleted: 'act.deleted.message',
  deleted_blocked: 'page.result.deleted_blocked',
  confirmation_required: 'act.failed.other',
  requested: 'act.requested.message',
};

/** The codes that are failures (shown as an error, not a notice). */
export const ERROR_CODES = new Set([
  'release_failed',
  'nothing_to_release',
  'release_not_configured',
  'upstream_unreachable',
  'release_outcome_unknown',
  'amavisd_busy',
  'nothing_to_delete',
  'confirmation_required',
]);

const ADMIN_BULK: Record<string, string> = {
  release: 'Released',
  delete: 'Deleted',
  release_allow: 'Released and sender allowed',
  delete_block: 'Deleted and sender blocked',
};

/** Why one id of a bulk action failed, by the verb's error code (the result page lists each). */
const ADMIN_REASONS: Record<string, string> = {
  not_found: 'not found in your scope',
  nothing_to_release: 'nothing left to release: already released, deleted, a release in progress, or no recipient matching the filter',
  nothing_to_delete: 'nothing left to delete: already released or deleted, or no recipient matching the filter',
  invalid_field: 'refused: the sender cannot be allowed or blocked (for example the null sender <>)',
  release_failed: 'amavisd did not release it; nothing was delivered',
  partial: 'released to some recipients only; see the message',
  release_not_configured: 'release is not configured on this server',
  upstream_unreachable: 'amavisd could not be reached; nothing was released',
  release_outcome_unknown: 'amavisd did not confirm: it may or may not have been delivered (an administrator resolves it)',
  amavisd_busy: 'amavisd was busy; nothing was sent',
  database_unavailable: 'the database was not reachable',
  release_not_allowed: 'the release policy does not allow it',
  confirmation_required: 'virus or banned mail: confirm to release it',
};
const OWNER_REASONS: Record<string, string> = {
  not_found: 'act.gone.message',
  nothing_to_release: 'act.nothing.message',
  nothing_to_delete: 'act.nothing.message',
  invalid_field: 'page.result.no_sender_this',
  release_failed: 'act.release_failed.message',
  partial: 'page.result.partial',
  release_not_configured: 'act.failed.other',
  upstream_unreachable: 'act.failed.server',
  release_outcome_unknown: 'act.unknown.message',
  amavisd_busy: 'act.failed.server',
  database_unavailable: 'act.failed.server',
  release_not_allowed: 'page.reason.not_allowed',
  confirmation_required: 'page.reason.not_allowed',
};

export interface ResultWords {
  /** one message's result (?done=); null: no such result for this reader */
  notice(code: string): string | null;
  /** "Released: 3. Not done: 1." for a bulk action, with the null-sender note; null: not a bulk action */
  bulk(action: string, ok: number, failed: number, nullSender: number): string | null;
  /** why one id of a bulk action failed */
  reason(code: string): string;
  /** the failures beyond the listed ones */
  more(n: number): string;
  noneSelected: string;
  stalePage: string;
}

export function resultWords(w: Words, owner: boolean): ResultWords {
  if (owner) {
    return {
      notice: (code) => (Object.hasOwn(OWNER_NOTICES, code) ? w.t(OWNER_NOTICES[code]!) : null),
      bulk: (action, ok, failed, nullSender) => {
        if (!Object.hasOwn(ADMIN_BULK, action)) return null;
        const line = w.t(`page.result.bulk.${action}`, { ok, failed });
        return nullSender > 0 ? `${line} ${w.n('page.result.no_sender', nullSender)}` : line;
      },
      reason: (code) => w.t(Object.hasOwn(OWNER_REASONS, code) ? OWNER_REASONS[code]! : 'act.failed.other'),
      more: (n) => w.n('page.result.more', n),
      noneSelected: w.t('page.result.none_selected'),
      stalePage: w.t('page.result.stale_page'),
    };
  }
  return {
    notice: (code) => (Object.hasOwn(ADMIN_NOTICES, code) ? ADMIN_NOTICES[code]! : null),
    bulk: (action, ok, failed, nullSender) => {
      if (!Object.hasOwn(ADMIN_BULK, action)) return null;
      const line = `${ADMIN_BULK[action]}: ${ok}. Failed: ${failed}.`;
      return nullSender > 0
        ? `${line} ${nullSender} of them had the null sender <>, which cannot be allowed or blocked; nothing was done to those.`
        : line;
    },
    reason: (code) => (Object.hasOwn(ADMIN_REASONS, code) ? ADMIN_REASONS[code]! : 'failed'),
    more: (n) => `${n} more ${n === 1 ? 'failure' : 'failures'}: see the audit log`,
    noneSelected: 'Nothing was selected: tick the messages to act on, then choose the action.',
    stalePage: 'That page link is no longer valid; showing the first page.',
  };
}
