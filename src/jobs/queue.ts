import type { Deps } from '../deps.ts';
import { deliverQueued } from '../webhooks/job.ts';
import { digestBatch, digestPlan } from '../digest/job.ts';
import { adminDigestBatch } from '../digest/admin-run.ts';
import type { JobEnv } from './cron.ts';

/**
 * Queue messages (Cloudflare Queues on Workers): `{kind, ...}`. Each kind has one handler; the
 * Worker acks a message when its handler resolves and retries it when it throws, explicitly, one
 * message at a time, so one bad message never holds back or silently drops the others.
 */
export interface QueueMessageBody {
  kind: string;
  [k: string]: unknown;
}

/** `env`: the runtime's queue, for a handler that enqueues what comes next (a digest run's continuation) */
export type QueueHandler = (deps: Deps, body: QueueMessageBody, env: JobEnv) => Promise<void>;

export const QUEUE_HANDLERS: Record<string, QueueHandler> = {
  'webhook.deliver': deliverQueued,
  'digest.batch': digestBatch,
  'digest.admin': adminDigestBatch,
  'digest.plan': digestPlan,
};

export class UnknownQueueMessage extends Error {}

export async function handleQueueMessage(deps: Deps, body: unknown, env: JobEnv = {}): Promise<void> {
  const kind = body && typeof body === 'object' ? (body as QueueMessageBody).kind : undefined;
  const handler = typeof kind === 'string' ? QUEUE_HANDLERS[kind] : undefined;
  if (!handler) throw new UnknownQueueMessage(`no handler for queue message kind ${JSON.stringify(kind)}`);
  await handler(deps, body as QueueMessageBody, env);
}
