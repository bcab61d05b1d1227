/**
 * The minute job's recovery pass (src/webhooks/job.ts), for every gateway: the writes a stopped
 * process left half done are settled (cross-writes.ts settleCrossWrites) and release attempts left
 * unsettled are announced (attempts.ts announceUnsettledReleases), each gateway's with its own Deps,
 * so step 2 is redone in that gateway's database and its audit rows and events name it. The
 * deployment's own database always has its pass; a registered gateway only when the state database
 * holds due work of its (the pass would find none otherwise, and a Worker opens a connection per
 * gateway it enters). A gateway that cannot be reached is logged and skipped: its rows wait for the
 * next minute, and no other gateway's pass waits for it (src/jobs/gateways.ts).
 */
import { HOME_GATEWAY } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import type { GatewayOpener } from '../gateways/context.ts';
import { eachGateway } from '../jobs/gateways.ts';
import { announceUnsettledReleases } from './attempts.ts';
import { seconds, settleCrossWrites, type CrossWriteReport } from './cross-writes.ts';

/** one gateway's pass may take this long before the others stop waiting for it (the job runs every minute) */
export const RECOVERY_DEADLINE_MS = 30_000;

/** how long a live request has to settle its own intent (settleCrossWrites' default) */
const INTENT_GRACE_SECONDS = 60;

export interface RecoveryReport extends CrossWriteReport {
  /** release attempts announced as quarantine.release_unknown */
  unknown: number;
  /** gateways whose pass failed or did not finish (logged with the reason) */
  skipped: string[];
}

export async function recoverEveryGateway(
  deps: Deps,
  opener: GatewayOpener | undefined,
  opts: { deadlineMs?: number } = {},
): Promise<RecoveryReport> {
  const ids = [HOME_GATEWAY, ...(await gatewaysWithDueWork(deps))];
  const runs = await eachGateway(
    deps,
    opener,
    ids,
    async (d) => {
      const recovered = await settleCrossWrites(d, { graceSeconds: INTENT_GRACE_SECONDS });
      // after the settlement, so an attempt it settles is not announced; before the delivery pass
      return { ...recovered, unknown: await announceUnsettledReleases(d) };
    },
    { job: 'recovery', deadlineMs: opts.deadlineMs ?? RECOVERY_DEADLINE_MS },
  );
  const report: RecoveryReport = { settled: 0, voided: 0, failed: 0, unknown: 0, skipped: [] };
  for (const r of runs) {
    if (!r.ok) {
      report.skipped.push(r.gateway);
      continue;
    }
    report.settled += r.value.settled;
    report.voided += r.value.voided;
    report.failed += r.value.failed;
    report.unknown += r.value.unknown;
  }
  return report;
}

/** Registered gateways (not '') with an intent past its grace or a release attempt past RELEASE_UNKNOWN_AFTER_MINUTES. */
async function gatewaysWithDueWork(deps: Deps): Promise<string[]> {
  const now = seconds(deps);
  const intents = await deps.state
    .selectFrom('qe_cross_writes')
    .select('gateway_id')
    .distinct()
    .where('gateway_id', '!=', HOME_GATEWAY)
    .where('created_at', '<=', now - INTENT_GRACE_SECONDS)
    .execute();
  const attempts = await deps.state
    .selectFrom('qe_release_attempts')
    .select('gateway_id')
    .distinct()
    .where('gateway_id', '!=', HOME_GATEWAY)
    .where('notified_at', 'is', null)
    .where('started_at', '<=', now - deps.config.RELEASE_UNKNOWN_AFTER_MINUTES * 60)
    .execute();
  const due = [...new Set([...intents, ...attempts].map((r) => String(r.gateway_id)))];
  if (due.length === 0) return [];
  // registered ones only (a removal drops its gateway's rows; any left from before are not for here)
  const registered = await deps.state.selectFrom('qe_gateways').select('id').where('id', 'in', due).execute();
  return registered.map((r) => r.id).sort();
}
