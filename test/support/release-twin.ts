import { verdict } from '../../src/amavis/pdp.ts';
import { AppError } from '../../src/errors.ts';
import type { ReleaseReply, ReleaseRequest, ReleaseTransport } from '../../src/release/transport.ts';

/**
 * The release transport's test twin for verb-level tests (scope, idempotency, audit, partial
 * answers). It answers with amavisd's own reply lines; the real transports are proven against a
 * real amavisd-new in test/e2e/.
 */
export class ReleaseTwin implements ReleaseTransport {
  readonly kind = 'direct' as const;
  calls: ReleaseRequest[] = [];
  /** per recipient: the setreply amavisd would send; default 250 2.0.0 */
  replies = new Map<string, string>();
  mode: 'answer' | 'unreachable' = 'answer';
  delayMs = 0;

  async release(req: ReleaseRequest, beforeSend?: () => Promise<void>): Promise<ReleaseReply> {
    // as the real transports do: the verb records its attempt, then the request goes out
    if (beforeSend) await beforeSend();
    this.calls.push(req);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.mode === 'unreachable') throw new AppError('upstream_unreachable', 'amavisd AM.PDP at 127.0.0.1:1: connection refused');
    const setreplies = req.recipients.map(
      (r) => this.replies.get(r) ?? `250 2.0.0 Ok, id=twin, from MTA([127.0.0.1]:10025): 250 2.0.0 Ok: queued`,
    );
    return {
      setreplies,
      attributes: setreplies.map((s) => ['setreply', s] as [string, string]),
      released: verdict(setreplies),
      via: 'direct',
    };
  }
}
