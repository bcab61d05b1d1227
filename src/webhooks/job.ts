import type { Deps } from '../deps.ts';
import type { JobEnv, JobReport, ScheduledJob } from '../jobs/cron.ts';
import type { QueueMessageBody } from '../jobs/queue.ts';
import { recoverEveryGateway } from '../quarantine/recovery-pass.ts';
import { deliverDue, deliverOne, dueDeliveries } from './deliver.ts';

/** Delivered and failed deliveries, their events and received Resend events are kept this long. */
const RETENTION_SECONDS = 30 * 86400;

/**
 * Every minute: with a Cloudflare Queue, due deliveries are handed to it ('webhook.deliver', one
 * message each, so one slow receiver never holds up the rest); without one (Node's `serve`, or a
 * Worker without the binding), they are sent here. Old history is pruned either way, and release
 * attempts left unsettled too long are announced (quarantine.release_unknown).
 */
export const webhookJob: ScheduledJob = {
  cron: '* * * * *',
  name: 'webhooks',
  async run(deps: Deps, env: JobEnv): Promise<JobReport> {
    const pruned = await prune(deps);
    // a state database apart (always, for a registered gateway): writes a stopped process left half
    // done are settled and unsettled releases announced, per gateway, before the delivery pass, so
    // their events go out in this run
    const { unknown, ...recovered } = await recoverEveryGateway(deps, env.gateways);
    if (recovered.settled || recovered.voided || recovered.failed || recovered.skipped.length)
      deps.log.info('cross-database writes recovered', { ...recovered });
    if (env.queue) {
      const ids = await dueDeliveries(deps, 500);
      const messages = ids.map((delivery_id) => ({ body: { kind: 'webhook.deliver', delivery_id } }));
      if (env.queue.sendBatch) {
        for (let i = 0; i < messages.length; i += 100) await env.queue.sendBatch(messages.slice(i, i + 100));
      } else {
        for (const m of messages) await env.queue.send(m.body);
      }
      return {
        job: 'webhooks',
        summary: `${ids.length} due deliveries queued, ${pruned} old rows pruned, ${unknown} unsettled releases announced${skippedText(recovered.skipped)}`,
        queued: ids.length,
        pruned,
        unknown,
        recovery_skipped: recovered.skipped,
      };
    }
    const report = await deliverDue(deps, { limit: 100 });
    return {
      ...report,
      summary: `${report.summary}; ${pruned} old rows pruned; ${unknown} unsettled releases announced${skippedText(recovered.skipped)}`,
      pruned,
      unknown,
      recovery_skipped: recovered.skipped,
    };
  },
};

/** The gateways whose recovery pass did not run this minute ('' the deployment's own), for the summary line. */
const skippedText = (skipped: string[]) =>
  skipped.length ? `; recovery skipped for ${skipped.map((g) => (g === '' ? 'the deployment' : `gateway ${g}`)).join(', ')}` : '';

/**
 * Queue kind 'webhook.deliver' {delivery_id}: one attempt if still due (the database holds the
 * backoff schedule, so a message for a delivery already sent or not yet due is a no-op). It
 * resolves (ack) after any HTTP outcome; only a database failure throws (the Worker retries it).
 */
export async function deliverQueued(deps: Deps, body: QueueMessageBody): Promise<void> {
  if (typeof body.delivery_id !== 'string') throw new Error('webhook.deliver needs a delivery_id');
  await deliverOne(deps, body.delivery_id);
}

async function prune(deps: Deps): Promise<number> {
  const before = Math.floor(deps.clock.now() / 1000) - RETENTION_SECONDS;
  const d = await deps.state
    .deleteFrom('qe_webhook_deliveries')
    .where('status', '!=', 'pending')
    .where('created_at', '<', before)
    .executeTakeFirst();
  // The attempts of the deliveries just pruned (and of none still kept: a delivery's history is whole).
  const a = await deps.state
    .deleteFrom('qe_webhook_attempts')
    .where('attempted_at', '<', before)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('qe_webhook_deliveries as d').select('d.id').whereRef('d.id', '=', 'qe_webhook_attempts.delivery_id'))),
    )
    .executeTakeFirst();
  const e = await deps.state
    .deleteFrom('qe_webhook_events')
    .where('created_at', '<', before)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('qe_webhook_deliveries as d').select('d.id').whereRef('d.event_id', '=', 'qe_webhook_events.id'))),
    )
    .executeTakeFirst();
  const r = await deps.state.deleteFrom('qe_resend_events').where('received_at', '<', before).executeTakeFirst();
  return Number(d.numDeletedRows) + Number(a.numDeletedRows) + Number(e.numDeletedRows) + Number(r.numDeletedRows);
}
