// The admin's message page explains the verdict: SpamAssassin's rules with their scores (from
// X-Spam-Status), the virus or banned part amavisd named (X-Amavis-Alert), a download link for the
// original, and each attachment's type, size and SHA-256. Header text is attacker-controlled: escaped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, uniqueDomains, ADMIN_KEY, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { keySession } from '../support/ui-client.ts';

const NOW = Math.floor(Date.now() / 1000);
const EICAR_B64 = 'WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo=';

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('the message page explains the verdict, on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let d: string;

  beforeAll(async () => {
    t = await testApp(variantName, { env: { LINK_SECRET: 'ui-verdict-link-secret-0123456789abcdefghij' } });
    f = new Fixtures(t);
    [d] = uniqueDomains(1) as [string];
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
  });

  it('spam: the rules that matched with their scores, highest first; hostile rule names never shown', async () => {
    const [id] = await f.add({
      timeNum: NOW - 60,
      content: 'S',
      sender: `s@${d}`,
      subject: 'rules',
      spamLevel: 1003.2,
      recipients: [{ address: `a@${d}` }],
      raw: `X-Spam-Status: Yes, score=1003.2 tag=2 tag2=6.31 kill=6.9\n\ttests=[BAYES_00=-1.9, GTUBE=1000, <img src=x>=5,\n\tHTML_MESSAGE=0.001] autolearn=no\nSubject: rules\n\nbody\n`,
    });
    const b = await keySession(t.app, ADMIN_KEY);
    const page = await b.page(`/ui/quarantine/${id}`);
    expect(page.res.status).toBe(200);
    const rules = [...page.html.matchAll(/<tr><td><code>([A-Z0-9_]+)<\/code><\/td><td class="num">([^<]*)<\/td><\/tr>/g)].map((m) => [
      m[1],
      m[2],
    ]);
    expect(rules).toEqual([
      ['GTUBE', '1000'],
      ['HTML_MESSAGE', '0.001'],
      ['BAYES_00', '-1.9'],
    ]);
    expect(page.html).toContain('<h2 id="h-verdict">Why it was quarantined</h2>');
    expect(page.html).not.toContain('<img src=x>');
    expect(page.html).toContain(`<a href="/ui/quarantine/${id}/raw" download="">Download the original (.eml)</a>`);
  });

  it('virus: the name amavisd gave, and the attachment with its type, size and SHA-256', async () => {
    const [id] = await f.add({
      timeNum: NOW - 60,
      content: 'V',
      sender: `v@${d}`,
      subject: 'virus',
      spamLevel: 0,
      recipients: [{ address: `a@${d}` }],
      raw:
        `X-Amavis-Alert: INFECTED, message contains virus: Eicar-Test-Signature\nSubject: virus\nMIME-Version: 1.0\n` +
        `Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nsee attachment\n--b\n` +
        `Content-Type: application/octet-stream; name="eicar.com"\nContent-Disposition: attachment; filename="eicar.com"\n` +
        `Content-Transfer-Encoding: base64\n\n${EICAR_B64}\n--b--\n`,
    });
    const b = await keySession(t.app, ADMIN_KEY);
    const page = await b.page(`/ui/quarantine/${id}`);
    expect(page.html).toContain('virus found: <strong>Eicar-Test-Signature</strong>');
    expect(page.html).toContain(
      '<td data-label="Name">eicar.com</td><td data-label="File type">application/octet-stream</td><td class="num" data-label="Size">68 bytes</td>' +
        '<td data-label="SHA-256"><code class="hash">275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f</code></td>',
    );
  });
});
