/**
 * Bench-only Worker entry (bench/worker-digest.ts builds it with wrangler, as `wrangler deploy`
 * would build functions/worker.ts): functions/worker.ts unchanged, with one difference: the QUEUE
 * binding is an in-isolate recorder (send, sendBatch), so what an invocation enqueues (pages, a continuation) can be read back
 * (GET /__bench/sent) and handed to the queue handler one batch at a time, under the bench's
 * control. A real Queue's send() is a subrequest; the recorder's is an array push (its CPU is lower
 * than a real send's, by the cost of serializing ~100 addresses per page).
 */
import worker, { type WorkerEnv } from '../functions/worker.ts';

const sent: unknown[] = [];
const recorder = {
  async send(body: unknown) {
    sent.push(structuredClone(body));
  },
  async sendBatch(messages: Array<{ body: unknown }>) {
    for (const m of messages) sent.push(structuredClone(m.body));
  },
};
const wrapped = new WeakMap<object, WorkerEnv>();
/** the same object for the same env, so functions/worker.ts keeps its per-isolate runtime */
function wrap(env: WorkerEnv): WorkerEnv {
  let w = wrapped.get(env);
  if (!w) {
    w = { ...env, QUEUE: recorder };
    wrapped.set(env, w);
  }
  return w;
}

type Handlers = typeof worker;

export default {
  fetch(request: Request, env: WorkerEnv, ctx: Parameters<Handlers['fetch']>[2]) {
    if (new URL(request.url).pathname === '/__bench/sent') return Response.json(sent.splice(0));
    return worker.fetch(request, wrap(env), ctx);
  },
  scheduled(controller: Parameters<Handlers['scheduled']>[0], env: WorkerEnv) {
    return worker.scheduled(controller, wrap(env));
  },
  queue(batch: Parameters<Handlers['queue']>[0], env: WorkerEnv) {
    return worker.queue(batch, wrap(env));
  },
};
