/**
 * A release or delete with a state database apart, in a process of its own that SIGKILLs itself
 * right after a named step commits (test/integration/state-apart-kill.test.ts). Environment:
 * AMAVISD_URL, STATE_URL, PDP (host:port), ACTION (release|delete|mark with RECIPIENTS, a JSON list|approve with REQUEST, a request id), ID, KILL_AT (a CrossWriteStep, or
 * empty: run to the end); IDEMPOTENCY_KEY: a release through the API's Idempotency-Key handling; FORCE=1: a release of the RECIPIENTS with force (an admin's release of copies stuck 'releasing'). Prints the verb's answer (or its error) as one JSON line.
 * GATEWAY (with GATEWAY_SECRETS_KEY): the verb acts in that registered gateway, entered as a request
 * enters it (src/gateways/context.ts; its AM.PDP address from its row); AMAVISD_URL and STATE_URL
 * are then the deployment's own (the same URL: its state in its amavisd database) and ID the
 * gateway's item id (test/integration/gateway-recovery.test.ts).
 */
import { idempotent } from '../../src/api/idempotency.ts';
import { releaseAnswer } from '../../src/api/routes/quarantine-actions.ts';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { parseItemId } from '../../src/amavis/mail-id.ts';
import { detectSchema } from '../../src/amavis/schema.ts';
import { composeNode } from '../../src/compose.node.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/connect.ts';
import { deleteMessage } from '../../src/quarantine/delete.ts';
import { releaseMessage } from '../../src/quarantine/release.ts';
import { markReleased } from '../../src/quarantine/resolve.ts';
import { approveReleaseRequest } from '../../src/quarantine/release-requests.ts';

const env = process.env;
const gateway = env.GATEWAY ?? '';
const handle = await openDatabase({ url: env.AMAVISD_URL, runtime: 'node', poolSize: 2 });
const state = env.STATE_URL === env.AMAVISD_URL ? handle : await openDatabase({ url: env.STATE_URL, runtime: 'node', poolSize: 2 });
const variant = await detectSchema(handle.db, handle.dialect);
const quiet = { info() {}, warn() {}, error() {} };
const root = composeNode(
  parseConfig({ DATABASE_URL: env.AMAVISD_URL, ...(gateway ? { GATEWAY_SECRETS_KEY: env.GATEWAY_SECRETS_KEY } : {}) }),
  { handle, state, variant },
  gateway
    ? { log: quiet, release: null, gatewayPdp: (hostPort) => directTransport(hostPort) }
    : { log: quiet, release: directTransport(env.PDP!) },
);
const base = root.deps({ handle, state, variant });
const deps = {
  ...(gateway ? (await root.gateways.enter(base, gateway)).deps : base),
  crossWriteStep: (step: string) => {
    if (step === env.KILL_AT) process.kill(process.pid, 'SIGKILL');
  },
};
const who = { role: 'admin', actor: 'kill-test', keyId: null, ...(gateway ? { gateway } : {}) } as const;
const key = parseItemId(env.ID!, gateway)!;
try {
  const result =
    env.ACTION === 'release'
      ? env.IDEMPOTENCY_KEY
        ? // as the API's release route calls it (src/api/routes/quarantine-actions.ts)
          await idempotent(deps, who, env.IDEMPOTENCY_KEY, { op: 'release', id: env.ID, body: {} }, (remember) =>
            releaseMessage(
              deps,
              who,
              { key, ...(remember ? { answerKey: { keyHash: remember.keyHash, requestId: 'req-kill' } } : {}) },
              async (trx, res) => remember?.(trx, releaseAnswer(res, 'req-kill')),
            ).then((res) => releaseAnswer(res, 'req-kill')),
          )
        : await releaseMessage(
            deps,
            who,
            env.FORCE === '1' ? { key, force: true, recipients: JSON.parse(env.RECIPIENTS ?? '[]') as string[] } : { key },
          )
      : env.ACTION === 'approve'
        ? (await approveReleaseRequest(deps, who, env.REQUEST!)).result
        : env.ACTION === 'mark'
          ? await markReleased(deps, who, { key, recipients: JSON.parse(env.RECIPIENTS ?? '[]') as string[] })
          : await deleteMessage(deps, who, { key });
  console.log(JSON.stringify({ result }));
} catch (err) {
  console.log(JSON.stringify({ error: (err as Error).message, code: (err as { code?: string }).code }));
} finally {
  await handle.close();
  if (state !== handle) await state.close();
  // a gateway's pool (src/gateways/context.ts) stays open for the process's life
  if (gateway) process.exit(0);
}
