import { describe, expect, it } from 'vitest';
import { call, json, problem, seed } from './support.ts';

const post = (path: string, key: string, body?: unknown) =>
  call(path, key, {
    method: 'POST',
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });

// Issue 18 in workerd: the release verb applies the release policy before anything else (this
// Worker has no relay configured, so a release that were let through would answer 503 instead).
describe('functions/worker.ts in workerd: the release policy', () => {
  const s = seed();

  it("a user key's release of virus mail is 403 release_not_allowed; its spam gets as far as the transport", async () => {
    const bob = await json<{ key: string }>(
      await post('/v1/keys', s.adminKey, { name: 'bob', role: 'user', mailbox: 'bob@example.com' }),
      201,
    );
    const refused = await problem(await post(`/v1/quarantine/${s.ids.virus}/release`, bob.key), 403, 'release_not_allowed');
    expect(refused.detail).toContain('request a release');

    const alice = await json<{ key: string }>(
      await post('/v1/keys', s.adminKey, { name: 'alice', role: 'user', mailbox: 'alice@example.com' }),
      201,
    );
    await problem(await post(`/v1/quarantine/${s.ids.spam}/release`, alice.key), 503, 'release_not_configured');
  });

  it('an admin releasing virus mail must confirm it', async () => {
    const body = await problem(await post(`/v1/quarantine/${s.ids.virus}/release`, s.adminKey), 409, 'confirmation_required');
    expect(body.field).toBe('confirm_dangerous');
    await problem(
      await post(`/v1/quarantine/${s.ids.virus}/release`, s.adminKey, { confirm_dangerous: true }),
      503,
      'release_not_configured',
    );
  });
});
