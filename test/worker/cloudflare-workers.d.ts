// The one piece of `cloudflare:workers` the Worker suite uses. The project does not load
// @cloudflare/workers-types globally (they clash with the DOM lib the rest of the code compiles
// against), so this declares just what the tests call.
declare module 'cloudflare:workers' {
  /** The main Worker's own exports, bound as loopback services: each call is a new request. */
  export const exports: {
    default: { fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> };
  };
  /** The main Worker's bindings (vars and secrets of the test config). */
  export const env: Record<string, unknown>;
}

// The queue helpers of @cloudflare/vitest-pool-workers: a real MessageBatch (ack/retry) for a
// queue() handler, and what the handler did with each message.
declare module 'cloudflare:test' {
  export interface QueueMessageInit {
    id: string;
    timestamp: Date;
    attempts: number;
    body: unknown;
  }
  export interface ExecutionContextLike {
    waitUntil(p: Promise<unknown>): void;
    passThroughOnException(): void;
    props: unknown;
  }
  export interface MessageBatchLike {
    readonly queue: string;
    readonly messages: Array<{ id: string; body: unknown; attempts: number; ack(): void; retry(o?: { delaySeconds?: number }): void }>;
  }
  export function createExecutionContext(): ExecutionContextLike;
  export function createMessageBatch(queueName: string, messages: QueueMessageInit[]): MessageBatchLike;
  export function getQueueResult(
    batch: MessageBatchLike,
    ctx: ExecutionContextLike,
  ): Promise<{
    outcome: string;
    ackAll: boolean;
    retryBatch: { retry: boolean };
    explicitAcks: string[];
    retryMessages: Array<{ msgId: string }>;
  }>;
}
