import { afterEach, describe, expect, it } from 'vitest';
import { directTransport, parseHostPort, pdpRequest } from '../../src/amavis/pdp-client.node.ts';
import type { PdpAttributes } from '../../src/amavis/pdp.ts';
import { closedPort, startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';

const RELEASE: PdpAttributes = [
  ['request', 'release'],
  ['mail_id', 'hZbBr1WxS3sy'],
  ['secret_id', 'AQIDBAUGBwgJ'],
  ['partition_tag', '0'],
  ['quar_type', 'Q'],
  ['recipient', 'alice@example.com'],
];
const REQ = {
  partitionTag: 0,
  mailId: 'hZbBr1WxS3sy',
  secretId: 'AQIDBAUGBwgJ',
  recipients: ['alice@example.com', 'bob@example.net'],
  requestedBy: 'admin@example.com',
};

let peers: PdpPeer[] = [];
const peer = async (...args: Parameters<typeof startPdpPeer>) => {
  const p = await startPdpPeer(...args);
  peers.push(p);
  return p;
};
afterEach(async () => {
  await Promise.all(peers.map((p) => p.close()));
  peers = [];
});

describe('pdpRequest over TCP', () => {
  it('returns the decoded reply of a peer that answers fully', async () => {
    const p = await peer();
    const reply = await pdpRequest(p.hostPort, RELEASE);
    expect(reply).toEqual([['setreply', '250 2.0.0 Ok, id=peer0, from MTA: 250 2.0.0 Ok: queued (for alice@example.com)']]);
    expect(p.requests()).toEqual([RELEASE]);
  });

  it('accepts an empty reply (just the terminating line) as a reply with no attributes', async () => {
    const p = await peer({ kind: 'reply', reply: () => [] });
    await expect(pdpRequest(p.hostPort, RELEASE)).resolves.toEqual([]);
  });

  it('waits for the terminating empty line even when the reply arrives byte by byte', async () => {
    const p = await peer({
      kind: 'reply',
      trickle: true,
      reply: () => [
        ['setreply', '250 2.0.0 Ok'],
        ['setreply', '250 2.0.0 Ok too'],
      ],
    });
    const reply = await pdpRequest(p.hostPort, RELEASE);
    expect(reply).toEqual([
      ['setreply', '250 2.0.0 Ok'],
      ['setreply', '250 2.0.0 Ok too'],
    ]);
  });

  // Once the request is out, amavisd may have delivered: every failure from there on is an unknown
  // outcome, never "unreachable" (which means nothing was sent).
  it.each([1, 10, 30])('is an unknown outcome when the peer closes after %d bytes of the reply', async (bytes) => {
    const p = await peer({ kind: 'half', bytes });
    await expect(pdpRequest(p.hostPort, RELEASE)).rejects.toMatchObject({
      code: 'release_outcome_unknown',
      message: expect.stringContaining(`connection closed before the reply was complete (${bytes} bytes received`),
    });
  });

  it('is an unknown outcome when the last setreply line arrives but not the empty line', async () => {
    const p = await peer({
      kind: 'half',
      bytes: 'setreply=250%202.0.0%20Ok,%20id=peer0,%20from%20MTA:%20250%202.0.0%20Ok:%20queued%20(for%20alice@example.com)\r\n'.length,
    });
    await expect(pdpRequest(p.hostPort, RELEASE)).rejects.toMatchObject({ code: 'release_outcome_unknown' });
  });

  it('is an unknown outcome when the peer closes without answering', async () => {
    const p = await peer({ kind: 'close' });
    await expect(pdpRequest(p.hostPort, RELEASE)).rejects.toMatchObject({
      code: 'release_outcome_unknown',
      message: expect.stringContaining('(0 bytes received'),
    });
  });

  it('is an unknown outcome when the peer resets the connection', async () => {
    const p = await peer({ kind: 'reset' });
    await expect(pdpRequest(p.hostPort, RELEASE)).rejects.toMatchObject({
      code: 'release_outcome_unknown',
      message: expect.stringMatching(/reset|closed/),
    });
  });

  it('is an unknown outcome when a peer that never answers times out', async () => {
    const p = await peer({ kind: 'silent' });
    const t0 = Date.now();
    await expect(pdpRequest(p.hostPort, RELEASE, { replyTimeoutMs: 200 })).rejects.toMatchObject({
      code: 'release_outcome_unknown',
      message: expect.stringContaining('no complete reply within 200 ms'),
    });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(p.received).toHaveLength(1);
  });

  it('is an error on a closed port', async () => {
    const port = await closedPort();
    await expect(pdpRequest(`127.0.0.1:${port}`, RELEASE)).rejects.toMatchObject({
      code: 'upstream_unreachable',
      message: expect.stringContaining('connection refused'),
    });
  });

  it('times out connecting to an address that does not answer', async () => {
    // 192.0.2.0/24 is TEST-NET-1: packets go nowhere (or the network says unreachable at once)
    await expect(pdpRequest('192.0.2.1:9998', RELEASE, { connectTimeoutMs: 200 })).rejects.toMatchObject({ code: 'upstream_unreachable' });
  });

  it('parses host:port forms and refuses others', () => {
    expect(parseHostPort('127.0.0.1:9998')).toEqual({ host: '127.0.0.1', port: 9998 });
    expect(parseHostPort('[::1]:9998')).toEqual({ host: '::1', port: 9998 });
    expect(parseHostPort('mail.example.com:10')).toEqual({ host: 'mail.example.com', port: 10 });
    for (const bad of ['127.0.0.1', ':9998', '127.0.0.1:0', '127.0.0.1:70000', '::1:9998']) {
      expect(() => parseHostPort(bad), bad).toThrow();
    }
  });
});

describe('on the wire', () => {
  it('encodes a recipient with CR/LF: no raw CR or LF inside a value, one line per attribute', async () => {
    const p = await peer();
    const hostile = 'alice@example.com\r\nrecipient=mallory@evil.example\r\n\r\nrequest=release';
    await pdpRequest(p.hostPort, [...RELEASE.slice(0, 5), ['recipient', hostile], ['requested_by', 'x\ny z\u0000']]);
    const wire = p.received[0]!;
    const text = wire.toString('latin1');
    // CR and LF appear only as line terminators: every CR is followed by LF, every LF preceded by CR
    expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n\u0000 ]/);
    const lines = text.split('\r\n');
    expect(lines.slice(-2)).toEqual(['', '']); // last attribute line, then the empty line
    expect(lines.slice(0, -2)).toEqual([
      'request=release',
      'mail_id=hZbBr1WxS3sy',
      'secret_id=AQIDBAUGBwgJ',
      'partition_tag=0',
      'quar_type=Q',
      'recipient=alice@example.com%0D%0Arecipient=mallory@evil.example%0D%0A%0D%0Arequest=release',
      'requested_by=x%0Ay%20z%00',
    ]);
    // and the peer saw exactly one recipient: the hostile string, whole
    expect(p.requests()[0]!.filter(([k]) => k === 'recipient')).toEqual([['recipient', hostile]]);
  });
});

describe('directTransport', () => {
  it('sends releaseAttributes and returns a ReleaseReply with the verdict', async () => {
    const p = await peer();
    const reply = await directTransport(p.hostPort).release(REQ);
    expect(reply.via).toBe('direct');
    expect(reply.released).toBe(true);
    expect(reply.setreplies).toHaveLength(2);
    expect(p.requests()[0]).toEqual([
      ['request', 'release'],
      ['mail_id', 'hZbBr1WxS3sy'],
      ['secret_id', 'AQIDBAUGBwgJ'],
      ['partition_tag', '0'],
      ['quar_type', 'Q'],
      ['recipient', 'alice@example.com'],
      ['recipient', 'bob@example.net'],
      ['requested_by', 'admin@example.com'],
    ]);
  });

  it('reports amavisd refusals as released: false, not as an error', async () => {
    const p = await peer({
      kind: 'reply',
      reply: () => [
        ['setreply', '450 4.5.0 Failure: Secret_id AQIDBAUGBwgJ does not match mail_id hZbBr1WxS3sy'],
        ['return_value', 'tempfail'],
        ['exit_code', '75'],
      ],
    });
    const reply = await directTransport(p.hostPort).release(REQ);
    expect(reply.released).toBe(false);
    expect(reply.setreplies).toEqual(['450 4.5.0 Failure: Secret_id [secret_id] does not match mail_id hZbBr1WxS3sy']);
  });

  it('refuses a recipient with CR/LF before connecting', async () => {
    const p = await peer();
    await expect(
      directTransport(p.hostPort).release({ ...REQ, recipients: ['a@example.com\r\nRCPT TO:<m@evil.example>'] }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    expect(p.received).toHaveLength(0);
  });
});
