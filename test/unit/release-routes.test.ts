// RELEASE_ROUTES: parsing (every bad value names the variable, never a 500 later) and the choice
// of path by msgs.host. The paths here are recording transports: what goes through amavisd for
// real is test/e2e/release-routes-real.test.ts.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.ts';
import { releaseRoutesProblem } from '../../src/compose.ts';
import { AppError } from '../../src/errors.ts';
import { routedTransport } from '../../src/release/routes.ts';
import type { ReleaseRequest, ReleaseTransport } from '../../src/release/transport.ts';

const SECRET = 'unit-relay-secret-0123456789abcdef0123';

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
}

describe('RELEASE_ROUTES', () => {
  it('parses host=AM.PDP and host=relay pairs, hosts lowercased without a trailing dot', () => {
    const c = parseConfig({
      RELEASE_ROUTES: ' MX1.Example.ORG.=127.0.0.1:9998 , mx2.example.org=https://relay.mx2.example.org/base, mx3.example.org=[::1]:9998 ',
      RELAY_SECRET: SECRET,
    });
    expect(c.RELEASE_ROUTES).toEqual([
      { host: 'mx1.example.org', target: { pdp: '127.0.0.1:9998' } },
      { host: 'mx2.example.org', target: { relay: 'https://relay.mx2.example.org/base' } },
      { host: 'mx3.example.org', target: { pdp: '[::1]:9998' } },
    ]);
    expect(parseConfig({}).RELEASE_ROUTES).toBeUndefined();
    expect(parseConfig({ RELEASE_ROUTES: '  ' }).RELEASE_ROUTES).toBeUndefined();
  });

  it.each([
    ['mx1.example.org', 'route 1: expected host=target'],
    ['=127.0.0.1:9998', 'route 1: the host must be a host name'],
    ['mx 1=127.0.0.1:9998', 'route 1: the host must be a host name'],
    ['mx1.example.org=127.0.0.1:9998,MX1.example.org=127.0.0.2:9998', 'route 2: mx1.example.org is named twice'],
    ['mx1.example.org=ftp://relay.example.org', 'route 1: mx1.example.org: the target must be host:port'],
    ['mx1.example.org=relay.example.org', 'route 1: mx1.example.org: the target must be host:port'],
    ['mx1.example.org=127.0.0.1:0', 'route 1: mx1.example.org: the target must be host:port'],
    ['mx1.example.org=127.0.0.1:99999', 'route 1: mx1.example.org: the target must be host:port'],
    ['mx1.example.org=::1:9998', 'route 1: mx1.example.org: the target must be host:port'],
    ['mx1.example.org=https://user:secret@relay.example.org', 'route 1: mx1.example.org: a relay URL without credentials'],
    ['mx1.example.org=https://relay.example.org/?token=x', 'route 1: mx1.example.org: a relay URL without credentials'],
    [`mx1.example.org=127.0.0.1:9998,${'a'.repeat(300)}=127.0.0.1:9998`, 'route 2: the host must be a host name'],
  ])('refuses %j', (value, message) => {
    const issues = problemsOf({ RELEASE_ROUTES: value });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toContain(`RELEASE_ROUTES: ${message}`);
  });

  it('refuses more routes than any cluster has, and a relay route without RELAY_SECRET', () => {
    const many = Array.from({ length: 65 }, (_, i) => `mx${i}.example.org=127.0.0.1:9998`).join(',');
    expect(problemsOf({ RELEASE_ROUTES: many })).toEqual(['RELEASE_ROUTES: at most 64 routes']);
    expect(problemsOf({ RELEASE_ROUTES: 'mx2.example.org=https://relay.example.org' })).toEqual([
      'RELAY_SECRET: is required when RELEASE_ROUTES names a relay (every relay checks the same secret)',
    ]);
  });

  it('AMAVISD_PDP is checked the same way: a value the AM.PDP client could not open is named at start', () => {
    for (const bad of ['::1:9998', '127.0.0.1:0', '127.0.0.1:99999', '127.0.0.1']) {
      expect(problemsOf({ AMAVISD_PDP: bad })).toEqual([
        'AMAVISD_PDP: expected host:port (port 1..65535), e.g. 127.0.0.1:9998 or [::1]:9998',
      ]);
    }
    expect(parseConfig({ AMAVISD_PDP: '[::1]:9998' }).AMAVISD_PDP).toBe('[::1]:9998');
    expect(parseConfig({ AMAVISD_PDP: 'localhost:9998' }).AMAVISD_PDP).toBe('localhost:9998');
  });

  it('on Workers, an AM.PDP route is a configuration problem naming the host', () => {
    const c = parseConfig({ RELEASE_ROUTES: 'mx1.example.org=127.0.0.1:9998,mx2.example.org=https://r.example.org', RELAY_SECRET: SECRET });
    expect(releaseRoutesProblem(c)?.variable).toBe('RELEASE_ROUTES');
    expect(releaseRoutesProblem(c)?.problem).toMatch(/^mx1\.example\.org: an AM\.PDP port/);
    expect(releaseRoutesProblem(parseConfig({ RELEASE_ROUTES: 'mx2.example.org=https://r.example.org', RELAY_SECRET: SECRET }))).toBeNull();
  });
});

describe('routedTransport', () => {
  const recorder = (name: string, seen: string[]): ReleaseTransport => ({
    kind: 'relay',
    async release(req, beforeSend) {
      await beforeSend?.();
      seen.push(`${name}:${req.mailId}`);
      return { setreplies: ['250 2.0.0 Ok'], attributes: [], released: true, via: name };
    },
  });
  const req = (mailId: string, host?: string): ReleaseRequest => ({
    partitionTag: 0,
    mailId,
    secretId: 's',
    recipients: ['a@example.test'],
    requestedBy: 'quarantine@example.test',
    ...(host === undefined ? {} : { host }),
  });

  it('sends each release to its host route, the rest to the default path', async () => {
    const seen: string[] = [];
    const t = routedTransport(
      new Map([
        ['mx1.example.org', recorder('one', seen)],
        ['mx2.example.org', recorder('two', seen)],
      ]),
      recorder('default', seen),
    );
    expect((await t.release(req('a', 'MX2.example.org.'))).via).toBe('two');
    await t.release(req('b', 'mx1.example.org'));
    await t.release(req('c', 'mx9.example.org'));
    await t.release(req('d'));
    expect(seen).toEqual(['two:a', 'one:b', 'default:c', 'default:d']);
  });

  it('without a default, a host it does not name is refused before anything is recorded or sent', async () => {
    const seen: string[] = [];
    const t = routedTransport(new Map([['mx1.example.org', recorder('one', seen)]]), null);
    let recorded = false;
    const err = await t
      .release(req('a', 'mx2.example.org'), async () => {
        recorded = true;
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('release_not_configured');
    expect((err as AppError).message).toContain('"mx2.example.org"');
    expect(recorded).toBe(false);
    expect(seen).toEqual([]);
  });
});
