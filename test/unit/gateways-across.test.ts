// Reading several gateways at once (src/gateways/across.ts): never more than `concurrency` at once,
// every answer by the deadline whatever the gateways do, and each one left out named with why. The
// gateways here are stand-ins for entering (the integration test test/integration/quarantine-across.test.ts
// enters real databases); what is checked is the bound and the naming.
import { describe, expect, it } from 'vitest';
import type { Identity } from '../../src/auth/identity.ts';
import type { Deps } from '../../src/deps.ts';
import { AppError } from '../../src/errors.ts';
import { acrossGateways } from '../../src/gateways/across.ts';
import type { GatewayOpener } from '../../src/gateways/context.ts';

const who: Identity = { role: 'admin', actor: 'test', keyId: null };
const warned: string[] = [];
const base = { gateway: '', log: { info() {}, warn: (m: string) => warned.push(m), error() {} } } as unknown as Deps;

/** Enters a gateway by id: `hang-*` never answers, `down-*` is unreachable, `gone-*` no longer registered. */
function opener(state: { open: number; most: number; released: number }): GatewayOpener {
  return {
    async enter(b, id) {
      if (id.startsWith('down-')) throw new AppError('gateway_unavailable', `gateway ${id}: not reachable`, { gateway: id });
      if (id.startsWith('gone-')) throw new AppError('not_found', 'no gateway with this id');
      state.open++;
      state.most = Math.max(state.most, state.open);
      if (id.startsWith('hang-')) await new Promise(() => {});
      return {
        deps: { ...b, gateway: id },
        release: async () => {
          state.open--;
          state.released++;
        },
      };
    },
  };
}

describe('acrossGateways', () => {
  it('reads each gateway as that gateway, in the order asked; names the unreachable, skips the removed', async () => {
    const state = { open: 0, most: 0, released: 0 };
    const seen: Array<[string, string | undefined]> = [];
    const r = await acrossGateways(
      base,
      who,
      ['', 'a', 'down-1', 'gone-1', 'b'],
      async (deps, w, g) => {
        seen.push([deps.gateway, w.gateway]);
        return g.toUpperCase();
      },
      { opener: opener(state), concurrency: 8, deadlineAt: Date.now() + 2000 },
    );
    expect(r.answered).toEqual([
      { gateway: '', value: '' },
      { gateway: 'a', value: 'A' },
      { gateway: 'b', value: 'B' },
    ]);
    expect(r.unavailable).toEqual([{ gateway: 'down-1', code: 'gateway_unavailable' }]);
    // the deployment's own database with the request's Deps and identity; a gateway's with its own
    expect(seen.sort()).toEqual([
      ['', undefined],
      ['a', 'a'],
      ['b', 'b'],
    ]);
    expect(state.released).toBe(2);
  });

  it('at most `concurrency` at once; gateways that hang, and those not started in time, are timeouts by the deadline', async () => {
    const state = { open: 0, most: 0, released: 0 };
    const ids = [...Array.from({ length: 6 }, (_, i) => `hang-${i}`), ...Array.from({ length: 14 }, (_, i) => `ok-${i}`)];
    const started = Date.now();
    const r = await acrossGateways(base, who, ids, async (_d, _w, g) => g, {
      opener: opener(state),
      concurrency: 4,
      deadlineAt: started + 300,
    });
    const ms = Date.now() - started;
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(1000);
    expect(state.most).toBeLessThanOrEqual(4);
    // four workers: four of the six hanging gateways hold them all until the deadline
    expect(r.answered).toEqual([]);
    expect(r.unavailable).toHaveLength(20);
    expect(new Set(r.unavailable.map((u) => u.code))).toEqual(new Set(['timeout']));
  });

  it('a failure is named `error` and logged; a 4xx (bad input, the same everywhere) is the answer', async () => {
    const state = { open: 0, most: 0, released: 0 };
    const o = { opener: opener(state), concurrency: 2, deadlineAt: Date.now() + 2000 };
    const r = await acrossGateways(
      base,
      who,
      ['a', 'b'],
      async (_d, _w, g) => {
        if (g === 'a') throw new Error('syntax error near ...');
        return g;
      },
      o,
    );
    expect(r.answered).toEqual([{ gateway: 'b', value: 'b' }]);
    expect(r.unavailable).toEqual([{ gateway: 'a', code: 'error' }]);
    expect(warned).toContain('gateway read failed');
    expect(state.released).toBe(2);
    await expect(
      acrossGateways(
        base,
        who,
        ['a', 'b'],
        async () => {
          throw new AppError('invalid_field', 'tz: too many days', { field: 'tz' });
        },
        o,
      ),
    ).rejects.toMatchObject({ code: 'invalid_field', extra: { field: 'tz' } });
  });
});
