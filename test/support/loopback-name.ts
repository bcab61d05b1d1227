import { promises as dns } from 'node:dns';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Resolve } from '../../src/webhooks/post.node.ts';

/**
 * A real name that resolves only to 127.x here: the host's own name, else a non-localhost name from
 * /etc/hosts; where there is none, a made-up name with an injected resolver (so the test still runs).
 */
export async function loopbackName(): Promise<{ host: string; address: string; resolve?: Resolve }> {
  let hosts = '';
  try {
    hosts = readFileSync('/etc/hosts', 'utf8');
  } catch {}
  const fromHosts = hosts.split('\n').flatMap((l) => (/^127\./.test(l) ? l.replace(/#.*/, '').trim().split(/\s+/).slice(1) : []));
  for (const host of [hostname(), ...fromHosts].filter((h) => h && !/(^|\.)localhost\.?$/i.test(h))) {
    const found = await dns.lookup(host, { all: true }).catch(() => []);
    if (found.length > 0 && found.every((a) => a.address.startsWith('127.'))) return { host, address: found[0]!.address };
  }
  const resolve: Resolve = (host, cb) =>
    host === 'loopback-name.test'
      ? cb(null, [{ address: '127.0.0.1', family: 4 }])
      : cb(Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' }), []);
  return { host: 'loopback-name.test', address: '127.0.0.1', resolve };
}
