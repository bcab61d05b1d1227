// One composition root: a request's Deps and the jobs'/CLI's Deps carry the same transports.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRuntime, type NodeRuntime } from '../../functions/node.ts';
import { parseConfig } from '../../src/config.ts';
import type { Deps } from '../../src/deps.ts';
import { nodeWebhookPost } from '../../src/webhooks/post.node.ts';

const ADMIN = 'compose-test-admin-key-0123456789';

describe('the Node runtime (serve, the CLI)', () => {
  let rt: NodeRuntime;
  beforeAll(async () => {
    rt = await startRuntime(
      parseConfig({
        DATABASE_URL: inject('variantUrls')['mysql-iredmail']!,
        ADMIN_API_KEY: ADMIN,
        RELAY_URL: 'https://relay.example',
        RELAY_SECRET: 'r'.repeat(32),
        SMTP_URL: 'smtp://127.0.0.1:1',
      }),
    );
  }, 60_000);
  afterAll(async () => rt?.close());

  it('gives a request the same Deps as its jobs: address-checked webhooks, the release transport, SMTP, templates', async () => {
    let seen: Deps | undefined;
    rt.app.get('/v1/compose-probe', (c) => {
      seen = c.get('deps');
      return c.json({ ok: true });
    });
    const res = await rt.app.request('/v1/compose-probe', { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(200);
    expect(rt.deps.webhookPost).toBe(nodeWebhookPost);
    expect(rt.deps.release).not.toBeNull();
    expect(rt.deps.mailer).toBeTruthy();
    for (const k of ['webhookPost', 'release', 'mailer', 'templates', 'clock', 'log', 'config', 'db', 'variant'] as const) {
      expect(seen?.[k], k).toBe(rt.deps[k]);
    }
  });
});
