// DIGEST_FROM read one way (src/mail/from-address.ts) by the release's Resent-From and a gateway's From.
import { describe, expect, it } from 'vitest';
import { withGatewayFrom } from '../../src/gateways/context.ts';
import { parseFromValue } from '../../src/mail/from-address.ts';
import { releaseFrom } from '../../src/quarantine/release.ts';
import type { Config } from '../../src/config.ts';

describe('parseFromValue', () => {
  it.each([
    ['Quarantine <quarantine@example.test>', 'Quarantine', 'quarantine@example.test'],
    ['"Mail, Team" <q@example.test>  ', '"Mail, Team"', 'q@example.test'],
    ['quarantine@example.test', '', 'quarantine@example.test'],
    ['<q@example.test>', '', 'q@example.test'],
    ['Broken <not an address>', '', 'Broken <not an address>'],
  ])('%s', (value, name, address) => {
    expect(parseFromValue(value)).toEqual({ name, address });
  });

  it("gives the release its address and a gateway's From its display name", () => {
    const config = { DIGEST_FROM: 'Quarantine <quarantine@example.test>' } as Config;
    expect(releaseFrom(config, ['u@example.org'])).toBe('quarantine@example.test');
    expect(releaseFrom({ DIGEST_FROM: 'Broken <x>' } as Config, ['u@example.org'])).toBe('postmaster@example.org');
    const gw = withGatewayFrom(config, 'quarantine@gw.example.test');
    expect(gw.DIGEST_FROM).toBe('Quarantine <quarantine@gw.example.test>');
    expect(gw.RELEASE_FROM).toBe('quarantine@gw.example.test');
    expect(withGatewayFrom({ DIGEST_FROM: 'q@example.test' } as Config, 'g@gw.example.test').DIGEST_FROM).toBe('g@gw.example.test');
  });
});
