import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISPLAY_LIMITS } from '../../src/quarantine/parse.ts';
import { TRUNCATED_NOTE } from '../../src/ui/mail-html.ts';
import { testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { HTML_BYPASSES, MB, bigHeadersMessage, deepMessage, hostileHtml, htmlMessage, manyPartsMessage } from '../support/hostile-mail.ts';
import { liveParts } from '../support/inspect-html.ts';
import { PageClient, portalSession } from '../support/ui-client.ts';

const SECRET = 'hostile-test-link-secret-0123456789abcdef';
const NOW = Math.floor(Date.now() / 1000);

// Stored as amavisd stores them (16 KiB chunks, its X-Envelope-* lines first), read back through the
// API, the message page, the body route opened on its own, and the downloads.
describe.each(['mysql-iredmail', 'pg-upstream'] as const)('hostile mail on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let alice: string;
  let b: PageClient;
  const ids: Record<string, string> = {};
  const raws: Record<string, string> = {};

  beforeAll(async () => {
    t = await testApp(variantName, { env: { LINK_SECRET: SECRET } });
    f = new Fixtures(t);
    alice = `alice@${uniqueDomains(1)[0]}`;
    const messages: Record<string, string> = {
      bypasses: htmlMessage('bypasses', HTML_BYPASSES),
      unclosed: htmlMessage('unclosed', hostileHtml('unclosed')),
      deepHtml: htmlMessage('deep html', hostileHtml('deep')),
      attribute: htmlMessage('attribute', hostileHtml('attribute')),
      nested: deepMessage(300),
      headers: bigHeadersMessage(3 * MB),
      parts: manyPartsMessage(100_000),
    };
    for (const [name, raw] of Object.entries(messages)) {
      raws[name] = raw;
      const [id] = await f.add({
        timeNum: NOW - 100,
        content: 'S',
        sender: 'spammer@bulk.example',
        subject: name,
        spamLevel: 9,
        recipients: [{ address: alice }],
        raw,
      });
      ids[name] = id!;
    }
    b = await portalSession(t.app, SECRET, alice, NOW + 3600);
  }, 120_000);

  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
  });

  const detail = async (name: string) => {
    const res = await t.get(`/v1/quarantine/${ids[name]}`);
    expect(res.status, `${name}: ${res.status === 200 ? '' : await res.clone().text()}`).toBe(200);
    return (await res.json()) as Record<string, any>;
  };
  const body = async (name: string, images = false) => {
    const res = await b.request(`/ui/quarantine/${ids[name]}/body${images ? '?images=1' : ''}`);
    expect(res.status, name).toBe(200);
    expect(res.headers.get('content-security-policy')).toMatch(/(^|; )sandbox($|;)/);
    return res.text();
  };

  it('the body route opened on its own leaves nothing live: a ">" in a quoted value, meta refresh, forms, srcset, CSS', async () => {
    const inner = await body('bypasses');
    expect(inner).toContain('Hello from the HTML part');
    expect(liveParts(inner)).toEqual([]);
    expect(inner).toContain('data-qe-href="https://evil.example/quoted-gt"');
    // remote images only when the reader chose them, and then only the <img> one
    const withImages = await body('bypasses', true);
    expect(liveParts(withImages, (u) => u === 'https://tracker.example/pixel.gif')).toEqual([]);
    expect(withImages).toContain('src="https://tracker.example/pixel.gif"');
    const page = await b.page(`/ui/quarantine/${ids.bypasses}`);
    expect(page.res.status).toBe(200);
    expect(page.html).toContain('Load remote images');
    expect(page.html).not.toContain('evil.example');
  });

  for (const name of ['unclosed', 'deepHtml', 'attribute']) {
    it(`a 5 MB hostile HTML part (${name}): API, page and body answer 200, the body is inert and cut at 1 MiB`, async () => {
      const d = await detail(name);
      expect(d).toMatchObject({ truncated: true, parse_error: false });
      expect(d.html.length).toBeLessThanOrEqual(DISPLAY_LIMITS.bytes);
      const page = await b.page(`/ui/quarantine/${ids[name]}`);
      expect(page.res.status).toBe(200);
      expect(page.html).toContain('Only the first 1 MiB of the HTML part is shown.');
      expect(page.html).toContain(`href="/ui/quarantine/${ids[name]}/raw"`);
      const inner = await body(name);
      expect(inner).toContain(TRUNCATED_NOTE);
      expect(inner.length).toBeLessThan(2 * MB);
      expect(liveParts(inner)).toEqual([]);
    });
  }

  it('nested deeper than allowed: 200 with the headers and parse_error, everywhere; the original downloads whole', async () => {
    const d = await detail('nested');
    expect(d).toMatchObject({ parse_error: true, text: null, html: null, attachments: [], subject: 'nested' });
    expect(d.headers.find((h: any) => h.name === 'Subject').value).toBe('nested 300 deep');
    await unreadableEverywhere('nested');
  });

  it('megabytes of headers: 200 with the first 64 KiB of them, parse_error and truncated', async () => {
    const d = await detail('headers');
    expect(d).toMatchObject({ parse_error: true, truncated: true, text: null });
    expect(d.headers[2]).toEqual({ name: 'Subject', value: 'megabytes of headers' });
    expect(JSON.stringify(d.headers).length).toBeLessThan(70 * 1024);
    await unreadableEverywhere('headers');
  });

  it(`100k parts in 2.5 MB: 200 with the first ${DISPLAY_LIMITS.parts} parts, truncated`, async () => {
    const d = await detail('parts');
    expect(d).toMatchObject({ parse_error: false, truncated: true, text: 'first part\n' });
    expect(d.attachments.length).toBeGreaterThan(900);
    expect(d.attachments.length).toBeLessThanOrEqual(DISPLAY_LIMITS.parts);
    const page = await b.page(`/ui/quarantine/${ids.parts}`);
    expect(page.res.status).toBe(200);
    expect(page.html).toContain('Truncated: this message is too large or has too many parts to show in full');
    expect(page.html).toContain(`href="/ui/quarantine/${ids.parts}/raw"`);
    expect(await body('parts')).toContain('No HTML could be read from this message');
    await downloadsWhole('parts');
  });

  it('the page download is scoped like the page: another mailbox gets 404', async () => {
    const bob = await portalSession(t.app, SECRET, `bob@${alice.split('@')[1]}`, NOW + 3600);
    for (const path of ['', '/body', '/raw']) expect((await bob.request(`/ui/quarantine/${ids.nested}${path}`)).status, path).toBe(404);
    expect((await new PageClient(t.app).request(`/ui/quarantine/${ids.nested}/raw`)).status).toBe(303);
  });

  async function unreadableEverywhere(name: string) {
    const page = await b.page(`/ui/quarantine/${ids[name]}`);
    expect(page.res.status).toBe(200);
    expect(page.html).toContain('This message could not be read for display');
    expect(page.html).toContain(`href="/ui/quarantine/${ids[name]}/raw"`);
    const inner = await body(name);
    expect(inner).toContain('No HTML could be read from this message');
    await downloadsWhole(name);
  }

  async function downloadsWhole(name: string) {
    for (const res of [await b.request(`/ui/quarantine/${ids[name]}/raw`), await t.get(`/v1/quarantine/${ids[name]}/raw`)]) {
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('message/rfc822');
      expect(new TextDecoder().decode(await res.arrayBuffer())).toBe(raws[name]);
    }
  }
});
