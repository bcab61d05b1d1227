import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import worker from '../../functions/worker.ts';
import { newSigningSecret, sign } from '../../src/webhooks/sign.ts';
import { call, json, seed } from './support.ts';

describe('functions/worker.ts in workerd: webhooks', () => {
  beforeAll(async () => {
    await call('/healthz');
  });

  it('signs with the standardwebhooks library inside workerd, equal to a Web Crypto HMAC', async () => {
    const secret = newSigningSecret();
    const raw = Uint8Array.from(atob(secret.slice(6)), (c) => c.charCodeAt(0));
    const key = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode('msg_x.1700000000.{"a":1}')));
    expect(sign(secret, 'msg_x', 1700000000, '{"a":1}')).toBe(`v1,${btoa(String.fromCharCode(...mac))}`);
  });

  it('manages subscriptions through the API', async () => {
    const key = seed().adminKey;
    const created = await json(
      await call('/v1/webhooks', key, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: 'https://hooks.example.com/in', events: ['quarantine.released'] }),
      }),
      201,
    );
    expect(created.secret).toEqual(expect.stringMatching(/^whsec_/));
    const listed = await json<{ items: Array<{ id: string }> }>(await call('/v1/webhooks', key));
    expect(listed.items.map((h) => h.id)).toContain(created.id);
    expect((await call(`/v1/webhooks/${created.id}`, key, { method: 'DELETE' })).status).toBe(204);
    expect((await call('/v1/hooks/resend', undefined, { method: 'POST', body: '{}' })).status).toBe(503);
  });

  it("runs the 'webhooks' cron job and the webhook.deliver queue kind", async () => {
    await worker.scheduled({ cron: '* * * * *', scheduledTime: Date.now() }, env as never);
    const acked: string[] = [];
    await worker.queue(
      {
        messages: [
          { id: 'm1', body: { kind: 'webhook.deliver', delivery_id: 'msg_unknown' }, ack: () => acked.push('m1'), retry: () => {} },
        ],
      },
      env as never,
    );
    expect(acked).toEqual(['m1']);
  });
});
