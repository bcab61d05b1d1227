import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED_PATH, generateTemplatesModule } from '../../scripts/generate-templates.ts';
import { linkKey, signLink, verifyLink } from '../../src/digest/links.ts';
import { base64url } from '../../src/crypto/hmac.ts';
import { hmacSha256Sync } from '../../src/crypto/sha256.ts';
import { formatTime, reasonFromHeaders, renderSubject } from '../../src/digest/render.ts';
import { ipBucket, windowLimiter } from '../../src/digest/rate-limit.ts';

const SECRET = 'unit-link-secret-0123456789abcdef0123';
const claims = {
  action: 'release' as const,
  partitionTag: 0,
  mailId: 'hZbBr1WxS3sy',
  recipient: 'alice@example.com',
  expires: 2_000_000_000,
};

describe('digest templates', () => {
  it('the bundled copy is the same as templates/ (run: npx tsx scripts/generate-templates.ts)', () => {
    expect(readFileSync(GENERATED_PATH, 'utf8')).toBe(generateTemplatesModule());
  });
});

describe('signed action links', () => {
  it('round-trips, and refuses any change, another secret, or expiry', async () => {
    const token = await signLink(SECRET, claims);
    expect(await verifyLink(SECRET, token, 1_000)).toEqual({ ok: true, claims });
    expect(await verifyLink(SECRET, token, 2_000_000_000)).toEqual({ ok: false, reason: 'expired' });
    expect((await verifyLink(`${SECRET}x`, token, 1_000)).ok).toBe(false);
    const [p, m] = token.split('.') as [string, string];
    const other = (await signLink(SECRET, { ...claims, recipient: 'bob@example.com' })).split('.')[0];
    expect(await verifyLink(SECRET, `${other}.${m}`, 1_000)).toEqual({ ok: false, reason: 'bad_signature' });
    const flipped = `${p}.${m[0] === 'A' ? 'B' : 'A'}${m.slice(1)}`;
    expect(await verifyLink(SECRET, flipped, 1_000)).toEqual({ ok: false, reason: 'bad_signature' });
    expect((await verifyLink(SECRET, 'x', 1_000)).ok).toBe(false);
  });
});

describe('signed links carry any address amavisd stores', () => {
  it('round-trips "|", quotes, spaces in quotes, 8-bit and 254 characters', async () => {
    const long = `${'l'.repeat(64)}@${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(53)}.example`;
    expect(long).toHaveLength(254);
    for (const recipient of [
      'a|b@example.com',
      '"john|doe smith"@example.com',
      '"a\\"b"@example.com',
      'ünïcode@example.com',
      long,
      'v1|v2|x|y|z|1@example.com',
    ]) {
      for (const c of [
        { ...claims, recipient },
        { action: 'portal' as const, partitionTag: null, mailId: null, recipient, expires: 2_000_000_000 },
      ]) {
        const token = await signLink(SECRET, c);
        expect(token.length).toBeLessThanOrEqual(1024);
        expect(await verifyLink(SECRET, token, 1_000)).toEqual({ ok: true, claims: c });
      }
    }
  });

  it('links signed before v2 (recipient in clear) keep working until they expire', async () => {
    const payload = new TextEncoder().encode('v1|release|0|hZbBr1WxS3sy|alice@example.com|2000000000');
    const v1 = `${base64url(payload)}.${base64url(hmacSha256Sync(SECRET, payload).subarray(0, 16))}`;
    expect(await verifyLink(SECRET, v1, 1_000)).toEqual({ ok: true, claims });
    // one link, one rate-limit bucket, whichever version it was written in
    const v2 = await signLink(SECRET, claims);
    expect(v2).not.toBe(v1);
    expect(linkKey(claims)).toBe(linkKey(((await verifyLink(SECRET, v1, 1_000)) as { claims: typeof claims }).claims));
  });
});

describe('tokens have one spelling', () => {
  const sign = (payload: string) => {
    const bytes = new TextEncoder().encode(payload);
    return `${base64url(bytes)}.${base64url(hmacSha256Sync(SECRET, bytes).subarray(0, 16))}`;
  };
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

  it('only the canonical base64url of the MAC: the 15 other spellings of its last character are refused', async () => {
    const token = await signLink(SECRET, claims);
    const [p, m] = token.split('.') as [string, string];
    expect(m).toHaveLength(22); // 16 bytes: the last character carries 2 bits and 4 unused ones
    const last = B64.indexOf(m.at(-1)!);
    const spellings = Array.from({ length: 16 }, (_, low) => `${p}.${m.slice(0, -1)}${B64[(last & ~15) | low]}`);
    expect(new Set(spellings).size).toBe(16);
    const results = await Promise.all(spellings.map((s) => verifyLink(SECRET, s, 1_000)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(spellings.filter((_, i) => results[i]!.ok)).toEqual([token]);
    // padding, standard-alphabet characters and a stray lone character are not base64url either
    for (const bad of [
      `${p}.${m}==`,
      `${p}==.${m}`,
      `${p}.${m}A`,
      `${p.replace(/-/g, '+').replace(/_/g, '/')}.${m}`,
      `${p}.${m.replace(/-/g, '+').replace(/_/g, '/')}`,
    ]) {
      if (bad === token) continue;
      expect((await verifyLink(SECRET, bad, 1_000)).ok, bad).toBe(false);
    }
  });

  it('only the canonical base64url of the payload: every spelling with unused bits set is refused', async () => {
    // payloads of each length modulo 3, so the last character has 2 or 4 unused bits or none
    for (const recipient of ['a@example.com', 'ab@example.com', 'abc@example.com']) {
      const token = await signLink(SECRET, { ...claims, recipient });
      const [p, m] = token.split('.') as [string, string];
      const unused = p.length % 4 === 2 ? 4 : p.length % 4 === 3 ? 2 : 0;
      const last = B64.indexOf(p.at(-1)!);
      const spellings = Array.from(
        { length: 1 << unused },
        (_, low) => `${p.slice(0, -1)}${B64[(last & ~((1 << unused) - 1)) | low]}.${m}`,
      );
      const ok = await Promise.all(spellings.map(async (s) => (await verifyLink(SECRET, s, 1_000)).ok));
      expect(ok.filter(Boolean), recipient).toHaveLength(1);
    }
  });

  it('only the canonical payload: other spellings of the same claims are refused even with a valid MAC', async () => {
    const r = (s: string) => base64url(new TextEncoder().encode(s));
    const mail = r('hZbBr1WxS3sy');
    const alice = r('alice@example.com');
    expect(await verifyLink(SECRET, sign(`v2|release|0|${mail}|${alice}|2000000000`), 1_000)).toEqual({ ok: true, claims });
    const others = [
      `v2|release|00|${mail}|${alice}|2000000000`,
      `v2|release|+0|${mail}|${alice}|2000000000`,
      `v2|release|0|${mail}|${alice}|02000000000`,
      `v2|release|0|${mail}|${alice}|2000000000.0`,
      `v2|release|0|${mail}|${alice}|2e9`,
      `v2|release|0|${mail}|${alice}| 2000000000`,
      `v2|release|0|${mail}=|${alice}|2000000000`,
      // the recipient's base64url with its 2 unused bits set: the same bytes, another spelling
      `v2|release|0|${mail}|${alice.slice(0, -1)}${B64[B64.indexOf(alice.at(-1)!) | 1]}|2000000000`,
      `v2|release|0|${mail}|${alice}|2000000000|`,
      `v1|release|00|hZbBr1WxS3sy|alice@example.com|2000000000`,
      `v1|release|0|hZbBr1WxS3sy|alice@example.com|+2000000000`,
      `V2|release|0|${mail}|${alice}|2000000000`,
    ];
    for (const payload of others)
      expect(await verifyLink(SECRET, sign(payload), 1_000), payload).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe("a registered gateway's links", () => {
  const sign = (payload: string) => {
    const bytes = new TextEncoder().encode(payload);
    return `${base64url(bytes)}.${base64url(hmacSha256Sync(SECRET, bytes).subarray(0, 16))}`;
  };
  it('carry the gateway as their last field, signed: round-trip, one spelling, a v1 link never names one', async () => {
    const withGateway = { ...claims, gateway: 'mx-eu-1' };
    const token = await signLink(SECRET, withGateway);
    expect(await verifyLink(SECRET, token, 1_000)).toEqual({ ok: true, claims: withGateway });
    expect(linkKey(withGateway)).not.toBe(linkKey(claims));
    const asKey = { ...withGateway, keyId: 'key_abc', actsAsKey: true as const };
    expect(await verifyLink(SECRET, await signLink(SECRET, asKey), 1_000)).toEqual({ ok: true, claims: asKey });
    // another gateway's (or none) under this MAC: refused
    const [p, m] = token.split('.') as [string, string];
    const payload = new TextDecoder().decode(Uint8Array.from(Buffer.from(p, 'base64url')));
    expect(payload.endsWith('|g:mx-eu-1')).toBe(true);
    const other = base64url(new TextEncoder().encode(payload.replace('|g:mx-eu-1', '|g:mx-us-1')));
    expect(await verifyLink(SECRET, `${other}.${m}`, 1_000)).toEqual({ ok: false, reason: 'bad_signature' });
    const r = (s: string) => base64url(new TextEncoder().encode(s));
    const base = `v2|release|0|${r('hZbBr1WxS3sy')}|${r('alice@example.com')}|2000000000`;
    for (const bad of [
      `${base}|g:`,
      `${base}|g:MX`,
      `${base}|g:-x`,
      `${base}|g:mx|g:mx`,
      `v1|release|0|hZbBr1WxS3sy|alice@example.com|2000000000|g:mx`,
    ])
      expect(await verifyLink(SECRET, sign(bad), 1_000), bad).toEqual({ ok: false, reason: 'malformed' });
    await expect(signLink(SECRET, { ...claims, gateway: 'Not An Id' })).rejects.toThrow(/gateway id is malformed/);
  });
});

describe('per-IP buckets', () => {
  it('an IPv4 address is its own bucket (also IPv4-mapped); IPv6 counts per /64 in any spelling', () => {
    expect(ipBucket('192.0.2.1')).toBe('192.0.2.1');
    expect(ipBucket('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(ipBucket('::ffff:c000:201')).toBe('192.0.2.1');
    const net = [
      '2001:db8:1:2::1',
      '2001:DB8:1:2:ffff:ffff:ffff:ffff',
      '2001:0db8:0001:0002::',
      '[2001:db8:1:2::5]',
      '2001:db8:1:2:0:0:0:9',
      '2001:db8:1:2::1%eth0',
    ];
    expect(new Set(net.map(ipBucket))).toEqual(new Set(['2001:db8:1:2::/64']));
    expect(ipBucket('2001:db8:1:3::1')).not.toBe(ipBucket('2001:db8:1:2::1'));
    expect(ipBucket('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(ipBucket('not an ip')).toBe('not an ip');
  });
});

describe('rendering', () => {
  it('the subject renders only {{total}}, on one line', () => {
    expect(renderSubject('You have {{total}} held\r\nBcc: x', 3)).toBe('You have 3 held Bcc: x');
  });
  it('formats times in the subscriber zone, else UTC, labelled', () => {
    expect(formatTime(0, null)).toBe('1970-01-01 00:00 UTC');
    expect(formatTime(0, 'Europe/Berlin')).toBe('1970-01-01 01:00 (Europe/Berlin)');
    expect(formatTime(0, 'Not/AZone')).toBe('1970-01-01 00:00 UTC');
  });
  it('reads a short reason from X-Amavis-Alert', () => {
    expect(reasonFromHeaders('X-Envelope-From: <a@b>\nX-Amavis-Alert: INFECTED, message contains virus:\n Eicar-Signature\n\nbody')).toBe(
      'virus: Eicar-Signature',
    );
    expect(reasonFromHeaders('X-Amavis-Alert: BANNED, message contains text/plain,.exe,invoice.exe\n\n')).toBe('banned: invoice.exe');
    expect(reasonFromHeaders('Subject: x\n\nX-Amavis-Alert: in the body\n')).toBe('');
  });
  it("decodes amavisd's \\x{..} escapes in a bad header's reason and cuts it between characters", () => {
    // what amavisd's header check writes (Unpackers/Validity.pm): each non-ASCII octet as \x{HH}
    const latin1 =
      'X-Amavis-Alert: BAD HEADER SECTION, Non-encoded non-ASCII data (and not UTF-8) (char E9 hex):\n Subject: \\x{E9}t\\x{E9} \\x{E0} Paris\n\n';
    expect(reasonFromHeaders(latin1)).toBe(
      'BAD HEADER SECTION, Non-encoded non-ASCII data (and not UTF-8) (char E9 hex): Subject: été à Paris',
    );
    const utf8 =
      'X-Amavis-Alert: BAD HEADER SECTION, Non-encoded UTF-8 string in non-EAI mail (char C3 A9 hex): Subject: \\x{C3}\\x{A9}t\\x{C3}\\x{A9}\n\n';
    expect(reasonFromHeaders(utf8)).toBe('BAD HEADER SECTION, Non-encoded UTF-8 string in non-EAI mail (char C3 A9 hex): Subject: été');
    // windows-1252's own octets, as a mail client shows them
    expect(reasonFromHeaders('X-Amavis-Alert: BAD HEADER SECTION, x: 5\\x{80} \\x{93}ok\\x{94}\n\n')).toBe(
      'BAD HEADER SECTION, x: 5€ “ok”',
    );
    // a backslash amavisd escaped, a wide code point, a control character
    expect(reasonFromHeaders('X-Amavis-Alert: BAD HEADER SECTION, x: a\\x{5C}x{41} \\x{263A} b\\x{0D}c\n\n')).toBe(
      'BAD HEADER SECTION, x: a\\x{41} ☺ b\uFFFDc',
    );
    // long: cut between characters, never inside an escape, a character or an emoji (a grapheme of
    // several code points: woman, zero-width joiner, microscope)
    const alert = (body: string) => `X-Amavis-Alert: BAD HEADER SECTION, Non-encoded UTF-8 string in non-EAI mail: Subject: ${body}\n\n`;
    const words = reasonFromHeaders(alert('\\x{C3}\\x{A9}t\\x{C3}\\x{A9}'.repeat(40)));
    expect(words).toMatch(/Subject: [ét]{30,}…$/);
    expect(words.length).toBeLessThanOrEqual(120);
    const scientist = '\\x{F0}\\x{9F}\\x{91}\\x{A9}\\x{E2}\\x{80}\\x{8D}\\x{F0}\\x{9F}\\x{94}\\x{AC}';
    for (const pad of ['', 'a', 'ab', 'abc', 'abcd']) {
      const emoji = reasonFromHeaders(alert(pad + scientist.repeat(20)));
      expect(emoji).toMatch(new RegExp(`Subject: ${pad}(\u{1F469}\u200D\u{1F52C})+…$`, 'u'));
      expect(emoji.length).toBeLessThanOrEqual(120);
    }
    // a virus name in UTF-8, cut at a space near the end
    expect(reasonFromHeaders(`X-Amavis-Alert: INFECTED, message contains virus: ${'Gr\\x{C3}\\x{BC}n '.repeat(30)}\n\n`)).toMatch(
      /^virus: (Grün )+Grün…$/,
    );
  });
  it('rate limits per key in a window', () => {
    const l = windowLimiter(2, 1000);
    expect([l.hit('a', 0), l.hit('a', 1), l.hit('a', 2), l.hit('b', 2), l.hit('a', 1000)]).toEqual([true, true, false, true, true]);
  });
});

describe('digest link expiry', () => {
  it('never lets a message link outlive the quarantine retention', async () => {
    const { digestView } = await import('../../src/digest/compose.ts');
    const { verifyLink } = await import('../../src/digest/links.ts');
    const { parseConfig } = await import('../../src/config.ts');
    const secret = 'unit-link-secret-0123456789abcdef0123';
    const config = parseConfig({ PUBLIC_URL: 'https://q.example.test', LINK_SECRET: secret, QUARANTINE_RETENTION_DAYS: '2' });
    const now = 1_790_000_000;
    const msg = (timeNum: number, mailId: string) => ({
      partitionTag: 0,
      mailId,
      timeNum,
      contentCode: 'S',
      subject: 's',
      sender: 'a@b.example',
      score: 9,
      reason: '',
    });
    const view = await digestView(
      { config, templates: {} as never, now },
      {
        recipient: 'alice@example.com',
        total: 2,
        timeZone: null,
        from: null,
        to: { time: now, mailId: 'AAAAAAAAAAAA' },
        messages: [msg(now - 86400, 'BBBBBBBBBBBB'), msg(now - 3600, 'CCCCCCCCCCCC')],
      },
    );
    const expiry = async (url: string) => {
      const r = await verifyLink(secret, url.split('/a/')[1]!, now);
      if (!r.ok) throw new Error(r.reason);
      return r.claims.expires;
    };
    expect(await expiry(view.messages[0]!.release_url)).toBe(now - 86400 + 2 * 86400);
    expect(await expiry(view.messages[1]!.delete_url)).toBe(now - 3600 + 2 * 86400);
  });
});

describe('the digest email (issue 16.3)', () => {
  const secret = 'unit-link-secret-0123456789abcdef0123';
  const now = 1_790_000_000;
  const msg = (i: number, contentCode: string, extra: Record<string, unknown> = {}) => ({
    partitionTag: 0,
    mailId: `M${String(i).padStart(11, '0')}`,
    timeNum: now - 60 * i,
    contentCode,
    subject: `message ${i}`,
    sender: `sender${i}@example.net`,
    score: contentCode === 'S' ? 9.5 : null,
    reason: '',
    ...extra,
  });
  const compose = async (
    env: Record<string, string>,
    messages: ReturnType<typeof msg>[],
    total = messages.length,
    kinds?: Record<string, number>,
  ) => {
    const { composeDigest } = await import('../../src/digest/compose.ts');
    const { templatesWith } = await import('../../src/digest/render.ts');
    const { parseConfig } = await import('../../src/config.ts');
    const config = parseConfig({ PUBLIC_URL: 'https://q.example.test', LINK_SECRET: secret, DIGEST_FROM: 'Q <q@example.test>', ...env });
    return composeDigest(
      { config, templates: templatesWith({}), now },
      {
        recipient: 'alice@example.com',
        total,
        timeZone: 'Europe/Berlin',
        from: null,
        to: { time: now, mailId: 'AAAAAAAAAAAA' },
        messages,
        ...(kinds ? { kinds: kinds as never } : {}),
      },
      'k'.repeat(64),
    );
  };

  it('a plural-correct subject by default; a custom DIGEST_SUBJECT still fills {{total}}', async () => {
    expect((await compose({}, [msg(1, 'S')])).subject).toBe('1 message was held in quarantine for you');
    expect((await compose({}, [msg(1, 'S'), msg(2, 'S')])).subject).toBe('2 messages were held in quarantine for you');
    expect((await compose({ DIGEST_SUBJECT: 'Quarantäne: {{total}} Nachrichten' }, [msg(1, 'S')])).subject).toBe(
      'Quarantäne: 1 Nachrichten',
    );
  });

  it("counts by kind and gives each reason in plain words, never the filter's jargon", async () => {
    const mail = await compose({}, [
      msg(1, 'S'),
      msg(2, 'V', { reason: 'virus: Eicar-Signature' }),
      msg(3, 'B', { reason: 'banned: invoice.exe' }),
      msg(4, 'H', { reason: 'BAD HEADER SECTION, Non-encoded 8-bit data' }),
      msg(5, 'Y'),
    ]);
    // the text part is wrapped: compare with line breaks as spaces
    for (const part of [mail.html!, mail.text!.replace(/\n\s*/g, ' ')]) {
      expect(part).toContain('What was held: 2 probably spam, 1 with a virus, 1 with a blocked attachment, and 1 held for another reason.');
      expect(part).toContain('Probably spam');
      expect(part).toContain('Contains a virus: Eicar-Signature');
      expect(part).toContain('Blocked attachment: invoice.exe');
      expect(part).toContain('Badly formed message headers');
      expect(part).toContain('Review all in your quarantine');
      expect(part).toMatch(/\(Europe(\/|&#x2F;)Berlin\)/);
      expect(part).not.toMatch(/amavis|scope|spam \(S\)|BAD HEADER|bad-header|spammy/i);
    }
  });

  it('lists the newest DIGEST_MAX_ITEMS, then "and M more" with the quarantine link', async () => {
    const many = Array.from({ length: 25 }, (_, i) => msg(i + 1, 'S'));
    const mail = await compose({}, many, 30);
    expect(mail.html!.match(/>message \d+</g)).toHaveLength(20);
    expect(mail.html).toContain('>message 1<');
    expect(mail.html).not.toContain('>message 21<');
    expect(mail.html).toContain('and 10 more messages');
    expect(mail.text).toMatch(/and 10 more messages\. See all in your quarantine:\nhttps:\/\/q\.example\.test\/a\//);
    const few = await compose({ DIGEST_MAX_ITEMS: '3' }, many, 25);
    expect(few.html!.match(/>message \d+</g)).toHaveLength(3);
    expect(few.text).toContain('and 22 more messages');
  });

  it('the text part is wrapped at 78 columns with every URL on its own line', async () => {
    const long = msg(1, 'S', { subject: 'a long subject '.repeat(12).trim(), sender: `${'x'.repeat(90)}@example.net` });
    const text = (await compose({}, [long])).text!;
    const urls = text.split('\n').filter((l) => l.includes('https://'));
    expect(urls.length).toBeGreaterThanOrEqual(4);
    for (const l of urls) expect(l.trim()).toMatch(/^https:\/\/q\.example\.test\/a\/\S+$/);
    for (const l of text.split('\n')) {
      if (!/https:\/\/|x{90}/.test(l)) expect(l.length, l).toBeLessThanOrEqual(78);
    }
    expect(text).toMatch(/^- a long subject a long subject/m);
  });

  it('the HTML: tables for layout, inline styles, nothing external, no script, at most 600 px', async () => {
    const html = (await compose({}, [msg(1, 'S')])).html!;
    expect(html).toContain('max-width:600px');
    expect(html).toMatch(/<table role="presentation"/);
    expect(html).not.toMatch(/<script|<link|@import|@font-face|url\(/i);
    // every button is a padded block: 11 + 20 + 11 px and a 1 px border each side
    expect(html).toMatch(/display:inline-block;margin:8px 8px 0 0;padding:11px 16px;[^"]*line-height:20px/);
  });
});

describe('message catalogs (templates/messages/<language>.json)', () => {
  const placeholders = (s: string) => [...s.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]).sort();

  it('every catalog has every key of English, the same placeholders, and each plural form the language selects', async () => {
    const { CATALOGS } = await import('../../src/digest/templates.generated.ts');
    const en = CATALOGS.en!;
    // a plural key: English has its .one and .other forms (reason.other alone is not one)
    const plural = new Set(Object.keys(en).flatMap((k) => (k.endsWith('.one') && `${k.slice(0, -4)}.other` in en ? [k.slice(0, -4)] : [])));
    const isForm = (k: string) => plural.has(k.slice(0, k.lastIndexOf('.')));
    for (const [l, cat] of Object.entries(CATALOGS)) {
      for (const k of Object.keys(en).filter((x) => !isForm(x))) {
        expect(cat[k], `${l}: ${k} missing`).toBeTypeOf('string');
        expect(placeholders(cat[k]!), `${l}: ${k}`).toEqual(placeholders(en[k]!));
      }
      const forms = new Intl.PluralRules(l).resolvedOptions().pluralCategories;
      for (const base of plural) {
        for (const f of forms) {
          expect(cat[`${base}.${f}`], `${l}: ${base}.${f} missing`).toBeTypeOf('string');
          expect(placeholders(cat[`${base}.${f}`]!), `${l}: ${base}.${f}`).toEqual(placeholders(en[`${base}.other`]!));
        }
      }
      // nothing but English's keys and the language's own plural forms
      for (const k of Object.keys(cat))
        expect(k in en || (isForm(k) && forms.includes(k.slice(k.lastIndexOf('.') + 1) as never)), `${l}: ${k}`).toBe(true);
    }
  });

  it('the catalog files are what is bundled, and each names its language', async () => {
    const { readdirSync } = await import('node:fs');
    const { CATALOGS } = await import('../../src/digest/templates.generated.ts');
    const files = readdirSync(new URL('../../templates/messages/', import.meta.url))
      .filter((f) => f.endsWith('.json'))
      .sort();
    expect(files.map((f) => f.slice(0, -5))).toEqual(Object.keys(CATALOGS).sort());
    for (const f of files) {
      const data = JSON.parse(readFileSync(new URL(`../../templates/messages/${f}`, import.meta.url), 'utf8')) as Record<string, string>;
      expect(data).toEqual(CATALOGS[f.slice(0, -5)]);
      expect(data['language.name']).toBeTruthy();
    }
  });

  it("words in the owner's language, plural by the language's rules, English for an unknown one", async () => {
    const { wordsFor } = await import('../../src/digest/wording.ts');
    const de = wordsFor('de');
    expect(de.n('subject', 1, { total: 1 })).toBe('1 Nachricht wurde für Sie in Quarantäne gehalten');
    expect(de.n('subject', 4, { total: 4 })).toBe('4 Nachrichten wurden für Sie in Quarantäne gehalten');
    expect(wordsFor('xx').language).toBe('en');
    expect(wordsFor(null).n('more', 1)).toBe('and 1 more message');
  });
});
