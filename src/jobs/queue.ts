import type { Deps } from '../deps.ts';
import { deliverQueued } from '../webhooks/job.ts';
import { digestBatch } from '../digest/job.ts';
import { adminDigestBatch } from '../digest/admin-run.ts';

/**
 * Queue messages (Cloudflare Queues on Workers): `{kind, ...}`. Each kind has one handler; the
 * Worker acks a message when its handler resolves and retries it when it throws, explicitly, one
 * message at a time, so one bad message never holds back or silently drops the others.
 */
export interface QueueMessageBody {
  kind: string;
  [k: string]: unknown;
}

export type QueueHandler = (deps: Deps, body: QueueMessageBody) => Promise<void>;

export const QUEUE_HANDLERS: Record<string, QueueHandler> = {
  'webhook.deliver': deliverQueued,
  'digest.batch': digestBatch,
  'digest.admin': adminDigestBatch,
};

export class UnknownQueueMessage extends Error {}

export async function handleQueueMessage(deps: Deps, body: unknown): Promise<void> {
  const kind = body && typeof body === 'object' ? (body as QueueMessageBody).kind : undefined;
  const handler = typeof kind === 'string' ? QUEUE_HANDLERS[kind] : undefined;
  if (!handler) throw new UnknownQueueMessage(`no handler for queue message kind ${JSON.stringify(kind)}`);
  await handler(deps, body as QueueMessageBody);
}
