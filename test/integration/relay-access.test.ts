// The relay published through a Cloudflare Tunnel behind Access (README): the release transport
// built from the configuration sends the Access service token with every request.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRelay, type RunningRelay } from '../../functions/relay.ts';
import { releaseTransportFor } from '../../functions/node.ts';
import { relayFromConfig } from '../../src/compose.ts';
import { parseConfig } from '../../src/config.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';

const SECRET = 'relay-access-secret-0123456789abcdef0123';
const ACCESS_ID = 'f00dcafe.access';
const ACCESS_SECRET = 'access-service-token-secret-0123456789';
const req = {
  partitionTag: 0,
  mailId: 'hZbBr1WxS3sy',
  secretId: 'AQIDBAUGBwgJ',
  recipients: ['carol@example.com'],
  requestedBy: 'admin@example.com',
};

/** What Access does at the edge: 403 without the service token's two headers, else pass it on. */
async function accessGate(target: string): Promise<{ url: string; server: Server; refused: number }> {
  const state = { url: '', server: null as unknown as Server, refused: 0 };
  state.server = createServer(async (r: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const c of r) chunks.push(c as Buffer);
    if (r.headers['cf-access-client-id'] !== ACCESS_ID || r.headers['cf-access-client-secret'] !== ACCESS_SECRET) {
      state.refused++;
      res.writeHead(403, { 'content-type': 'text/html' }).end('<html>Forbidden (Access)</html>');
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers))
      if (typeof v === 'string' && !k.startsWith('cf-access-') && k !== 'host') headers[k] = v;
    const up = await fetch(`${target}${r.url}`, { method: r.method, headers, body: Buffer.concat(chunks) });
    const out: Record<string, string> = {};
    up.headers.forEach((v, k) => (out[k] = v));
    res.writeHead(up.status, out).end(Buffer.from(await up.arrayBuffer()));
  });
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}`;
  return state;
}

describe('relay behind Cloudflare Access (service token)', () => {
  let peer: PdpPeer;
  let relay: RunningRelay;
  let gate: Awaited<ReturnType<typeof accessGate>>;
  beforeAll(async () => {
    peer = await startPdpPeer();
    relay = await startRelay({ secret: SECRET, pdp: peer.hostPort, port: 0 });
    gate = await accessGate(relay.url);
  });
  afterAll(async () => {
    gate?.server.close();
    await relay?.close();
    await peer?.close();
  });

  it('sends CF-Access-Client-Id/-Secret from RELAY_ACCESS_CLIENT_ID/_SECRET (Worker and Node), and releases', async () => {
    const config = parseConfig({
      RELAY_URL: gate.url,
      RELAY_SECRET: SECRET,
      RELAY_ACCESS_CLIENT_ID: ACCESS_ID,
      RELAY_ACCESS_CLIENT_SECRET: ACCESS_SECRET,
    });
    for (const transport of [relayFromConfig(config)!, releaseTransportFor(config)!]) {
      expect(await transport.release(req)).toMatchObject({ released: true, via: 'relay' });
    }
    expect(gate.refused).toBe(0);
  });

  it('without the token Access refuses, and the release fails naming the 403 (nothing sent to amavisd)', async () => {
    const before = peer.received.length;
    const transport = relayFromConfig(parseConfig({ RELAY_URL: gate.url, RELAY_SECRET: SECRET }))!;
    await expect(transport.release(req)).rejects.toMatchObject({ code: 'release_failed', message: expect.stringContaining('403') });
    expect(peer.received.length).toBe(before);
  });

  it('the two variables go together', () => {
    expect(() => parseConfig({ RELAY_ACCESS_CLIENT_ID: ACCESS_ID })).toThrow(/RELAY_ACCESS_CLIENT_SECRET/);
  });
});
