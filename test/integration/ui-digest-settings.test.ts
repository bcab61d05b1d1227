import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { VARIANTS } from '../support/databases.ts';
import { Fixtures } from '../support/fixtures.ts';
import { tagsOf } from '../support/inspect-html.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';
import { portalSession as openPortal, type PageClient } from '../support/ui-client.ts';

// The owner's "Digest settings" page (issue 16.1): it shows what the owner really gets and why, and
// saving it as shown changes nothing the owner did not change.
const SECRET = 'ui-digest-settings-secret-0123456789abcdef';
const NOW = Math.floor(Date.now() / 1000);

/** The fields a browser would submit for the page's settings form, as rendered. */
function formFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  let select: string | null = null;
  let inForm = false;
  for (const tk of tagsOf(html)) {
    if (tk.tag === 'form') inForm = tk.attrs.action === '/ui/subscription';
    if (!inForm) continue;
    if (tk.tag === 'input' && tk.attrs.name) {
      if (tk.attrs.type === 'checkbox' && !('checked' in tk.attrs)) continue;
      out[tk.attrs.name] = tk.attrs.value ?? 'on';
    }
    if (tk.tag === 'select') {
      select = tk.attrs.name ?? null;
      if (select) out[select] = '';
    }
    if (tk.tag === 'option' && select && 'selected' in tk.attrs) out[select] = tk.attrs.value ?? '';
  }
  return out;
}

describe.each(VARIANTS)('digest settings page on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let resend: ResendTwin;
  let domain: string;
  const sub = (a: string) => t.handle.db.selectFrom('qe_digest_subscriptions').selectAll().where('address', '=', a).executeTakeFirst();
  const portal = (mailbox: string) => openPortal(t.app, SECRET, mailbox, NOW + 3600);
  const sendToEveryone = (recipients: string[]) =>
    t.get('/v1/digests/run', ADMIN_KEY, {
      method: 'POST',
      body: JSON.stringify({ force_all: true, recipients }),
      headers: { 'content-type': 'application/json' },
    });
  const mail = (to: string, ago: number) =>
    f.add({
      timeNum: NOW - ago,
      content: 'S',
      sender: `spam@${domain}`,
      subject: 'buy now',
      spamLevel: 9,
      recipients: [{ address: to }],
    });
  const save = async (b: PageClient, change: Record<string, string | undefined>) => {
    const page = await b.page('/ui/subscription');
    const fields = { ...formFields(page.html), ...change };
    return b.post('/ui/subscription', fields);
  };

  beforeAll(async () => {
    resend = await startResendTwin();
    t = await testApp(variantName, {
      env: {
        LINK_SECRET: SECRET,
        PUBLIC_URL: 'https://q.example.test',
        DIGEST_FROM: 'Quarantine <q@example.test>',
        RESEND_API_KEY: 're_test',
        RESEND_BASE_URL: resend.url,
      },
    });
    f = new Fixtures(t);
    [domain] = uniqueDomains(1) as [string];
  });
  beforeEach(() => resend.reset());
  afterAll(async () => {
    await f?.cleanup();
    if (t) {
      await t.handle.db.deleteFrom('qe_digest_subscriptions').where('domain', '=', domain).execute();
      await t.handle.db.deleteFrom('qe_digest_state').where('recipient', 'like', `%@${domain}`).execute();
      await t.handle.db.deleteFrom('qe_digest_sends').where('recipient', 'like', `%@${domain}`).execute();
      await t.close();
    }
    await resend?.close();
  });

  it('send-to-everyone: the page says so, and saving a new frequency as shown keeps the digest coming', async () => {
    const ann = `ann@${domain}`;
    await mail(ann, 7200);
    expect((await sendToEveryone([ann])).status).toBe(200);
    expect(resend.emails.filter((e) => e.to[0] === ann)).toHaveLength(1);

    const b = await portal(ann);
    const page = await b.page('/ui/subscription');
    expect(page.html).toContain('You receive a digest because your administrator sends one to everyone');
    expect(formFields(page.html).enabled).toBe('1');

    const res = await save(b, { frequency: 'weekly' });
    expect(res.status).toBe(303);
    const row = await sub(ann);
    expect(row?.enabled).not.toBe(0);
    expect(row).toMatchObject({ frequency: 'weekly' });
    const after = await b.page(res.headers.get('location')!);
    expect(after.html).toContain('Saved. You receive a digest once a week');

    // the next send-to-everyone run still reaches her
    await mail(ann, 600);
    await sendToEveryone([ann]);
    expect(resend.emails.filter((e) => e.to[0] === ann)).toHaveLength(1);
  });

  it('saving only a time zone stores no choice: send-to-everyone still reaches the owner, a scheduled run does not subscribe them', async () => {
    const ben = `ben@${domain}`;
    const b = await portal(ben);
    const page = await b.page('/ui/subscription');
    expect(page.html).toContain('You do not receive a digest');
    expect(formFields(page.html).enabled).toBeUndefined();
    // the zone list is the runtime's; the browser prefill applies only while none is saved
    expect(page.html).toContain('data-tz-prefill');
    expect(page.html).toContain('<option value="Europe/Berlin"');
    const res = await save(b, { time_zone: 'Europe/Berlin' });
    expect(res.status).toBe(303);
    expect(await sub(ben)).toMatchObject({ enabled: 2, time_zone: 'Europe/Berlin' });
    const saved = await b.page('/ui/subscription?done=saved');
    expect(saved.html).not.toContain('data-tz-prefill');
    expect(saved.html).toMatch(/<option value="Europe\/Berlin" selected/);
    expect(saved.html).toContain('Times are shown in Europe/Berlin');

    await mail(ben, 3600);
    await sendToEveryone([ben]);
    expect(resend.emails.filter((e) => e.to[0] === ben)).toHaveLength(1);
    // the digest's times are in her zone
    expect(resend.emails[0]!.text).toContain('(Europe/Berlin)');
  });

  it('off: the page says who turned it off and when; saving unchanged writes nothing; the result names the new state', async () => {
    const cy = `cy@${domain}`;
    const b = await portal(cy);
    expect((await save(b, { enabled: '1' })).status).toBe(303);
    expect(await sub(cy)).toMatchObject({ enabled: 1, frequency: 'daily' });
    const on = await b.page('/ui/subscription?done=saved');
    expect(on.html).toContain('Saved. You receive a digest once a day');

    const off = await save(b, { enabled: undefined });
    expect(off.status).toBe(303);
    expect(await sub(cy)).toMatchObject({ enabled: 0 });
    const page = await b.page(off.headers.get('location')!);
    expect(page.html).toMatch(/Saved\. You turned digests off on [A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d [AP]M UTC\./);

    const before = await sub(cy);
    const same = await save(b, {});
    expect(same.headers.get('location')).toBe('/ui/subscription?done=unchanged');
    expect(await sub(cy)).toEqual(before);
    expect((await b.page('/ui/subscription?done=unchanged')).html).toContain('Nothing changed. You turned digests off');
  });

  it("the owner chooses the digest's language: subject, HTML and text in German", async () => {
    const gus = `gus@${domain}`;
    const b = await portal(gus);
    const page = await b.page('/ui/subscription');
    expect(page.html).toContain('<option value="de">Deutsch</option>');
    expect((await save(b, { language: 'xx' })).status).toBe(400);
    expect(await sub(gus)).toBeUndefined();
    expect((await save(b, { language: 'de' })).status).toBe(303);
    // only the language was changed: no on/off choice stored
    expect(await sub(gus)).toMatchObject({ enabled: 2, language: 'de' });
    expect((await t.get(`/v1/digests/subscriptions/${gus}`)).status).toBe(200);
    expect(await (await t.get(`/v1/digests/subscriptions/${gus}`)).json()).toMatchObject({ language: 'de' });

    await mail(gus, 3600);
    await mail(gus, 1800);
    await sendToEveryone([gus]);
    const [email] = resend.emails.filter((e) => e.to[0] === gus);
    expect(email!.subject).toBe('2 Nachrichten wurden für Sie in Quarantäne gehalten');
    expect(email!.html).toContain('<html lang="de">');
    expect(email!.html).toContain('Alle in Ihrer Quarantäne ansehen');
    expect(email!.text).toContain('Grund: Wahrscheinlich Spam');
    expect(email!.text).toContain('Freigeben:');
    expect(email!.text).not.toContain('Release');
  });

  it('the language menu with nothing saved says what "Automatic" gives; saving the page untouched stores no language', async () => {
    const eva = `eva@${domain}`;
    const b = await portal(eva);
    // a German browser, no DIGEST_LANGUAGE: these pages are German, the digest English; the menu says both
    const de = { 'accept-language': 'de-DE,de;q=0.9' };
    const shown = async () => {
      const res = await b.request('/ui/subscription', { headers: de });
      return res.text();
    };
    const page = await shown();
    expect(page).toContain('<html lang="de">');
    expect(page).toContain('<option value="" selected="">Automatisch</option>');
    expect(page).toContain('Mit „Automatisch“ gilt zurzeit – diese Seiten: Deutsch; die Übersicht: English.');
    expect(formFields(page).language).toBe('');
    // untouched: nothing stored at all (no row), the result says nothing changed
    const same = await b.post('/ui/subscription', formFields(page), de);
    expect(same.headers.get('location')).toBe('/ui/subscription?done=unchanged');
    expect(await sub(eva)).toBeUndefined();
    // another field changed: still no language stored
    expect((await b.post('/ui/subscription', { ...formFields(await shown()), frequency: 'weekly' }, de)).status).toBe(303);
    expect(await sub(eva)).toMatchObject({ frequency: 'weekly', language: null });
    // an English browser reads one language: "Automatic (English)"
    expect((await b.page('/ui/subscription')).html).toContain('<option value="" selected="">Automatic (English)</option>');

    // a chosen language is selected; choosing Automatic again stores no language
    expect((await b.post('/ui/subscription', { ...formFields(await shown()), language: 'ja' }, de)).status).toBe(303);
    expect(await sub(eva)).toMatchObject({ language: 'ja' });
    const chosen = await shown();
    expect(chosen).toContain('<html lang="ja">');
    expect(formFields(chosen).language).toBe('ja');
    expect((await b.post('/ui/subscription', { ...formFields(chosen), language: '' }, de)).status).toBe(303);
    expect(await sub(eva)).toMatchObject({ frequency: 'weekly', language: null });
  });

  it('a time zone outside the list is a 400 page naming the field; nothing is stored', async () => {
    const dee = `dee@${domain}`;
    const b = await portal(dee);
    const bad = await save(b, { time_zone: 'Mars/Olympus_Mons' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('is not a time zone in the list');
    expect(await sub(dee)).toBeUndefined();
    // the prefill script is served from this origin (CSP script-src 'self')
    const js = await b.request('/ui/static/tz.js');
    expect(js.status).toBe(200);
    expect(await js.text()).toContain('data-tz-prefill');
  });
});
