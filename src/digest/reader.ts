import type { Deps } from '../deps.ts';
import { negotiate, pickLanguage } from './locale.ts';
import { wordsFor, type Words } from './wording.ts';

/**
 * A mailbox owner as a reader: the language and time zone saved on their subscription; else
 * DIGEST_LANGUAGE, then the browser's Accept-Language (pages only), then English; times in UTC
 * when no zone is saved (README: Languages).
 */
export interface OwnerReader {
  w: Words;
  timeZone: string | null;
  /** the subscription's own language (null: not chosen) */
  chosen: string | null;
}

export async function ownerReader(deps: Deps, mailbox: string | null, acceptLanguage?: string | null): Promise<OwnerReader> {
  const sub = mailbox
    ? await deps.state
        .selectFrom('qe_digest_subscriptions')
        .select(['language', 'time_zone'])
        .where('gateway_id', '=', deps.gateway)
        .where('address', '=', mailbox)
        .executeTakeFirst()
    : undefined;
  const chosen = sub?.language ?? null;
  return {
    w: wordsFor(pickLanguage(chosen, deps.config.DIGEST_LANGUAGE, negotiate(acceptLanguage))),
    timeZone: sub?.time_zone ?? null,
    chosen,
  };
}
