import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED_PATH, generateTemplatesModule } from '../../scripts/generate-templates.ts';
import { signLink, verifyLink } from '../../src/digest/links.ts';
import { formatTime, reasonFromHeaders, renderSubject } from '../../src/digest/render.ts';
import { windowLimiter } from '../../src/digest/rate-limit.ts';

const SECRET = 'unit-link-secret-0123456789abcdef0123';
const claims = { action: 'release' as const, partitionTag: 0, mailId: 'hZbBr1WxS3sy', recipient: 'alice@example.com', expires: 2_000_000_000 };

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
    await expect(signLink(SECRET, { ...claims, recipient: 'a|b@example.com' })).rejects.toThrow();
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
    expect(reasonFromHeaders('X-Envelope-From: <a@b>\nX-Amavis-Alert: INFECTED, message contains virus:\n Eicar-Signature\n\nbody')).toBe('virus: Eicar-Signature');
    expect(reasonFromHeaders('X-Amavis-Alert: BANNED, message contains text/plain,.exe,invoice.exe\n\n')).toBe('banned: invoice.exe');
    expect(reasonFromHeaders('Subject: x\n\nX-Amavis-Alert: in the body\n')).toBe('');
  });
  it("decodes amavisd's \\x{..} escapes in a bad header's reason and cuts it between characters", () => {
    // what amavisd's header check writes (Unpackers/Validity.pm): each non-ASCII octet as \x{HH}
    const latin1 = 'X-Amavis-Alert: BAD HEADER SECTION, Non-encoded non-ASCII data (and not UTF-8) (char E9 hex):\n Subject: \\x{E9}t\\x{E9} \\x{E0} Paris\n\n';
    expect(reasonFromHeaders(latin1)).toBe('BAD HEADER SECTION, Non-encoded non-ASCII data (and not UTF-8) (char E9 hex): Subject: été à Paris');
    const utf8 = 'X-Amavis-Alert: BAD HEADER SECTION, Non-encoded UTF-8 string in non-EAI mail (char C3 A9 hex): Subject: \\x{C3}\\x{A9}t\\x{C3}\\x{A9}\n\n';
    expect(reasonFromHeaders(utf8)).toBe('BAD HEADER SECTION, Non-encoded UTF-8 string in non-EAI mail (char C3 A9 hex): Subject: été');
    // windows-1252's own octets, as a mail client shows them
    expect(reasonFromHeaders('X-Amavis-Alert: BAD HEADER SECTION, x: 5\\x{80} \\x{93}ok\\x{94}\n\n')).toBe('BAD HEADER SECTION, x: 5€ “ok”');
    // a backslash amavisd escaped, a wide code point, a control character
    expect(reasonFromHeaders('X-Amavis-Alert: BAD HEADER SECTION, x: a\\x{5C}x{41} \\x{263A} b\\x{0D}c\n\n')).toBe('BAD HEADER SECTION, x: a\\x{41} ☺ b\uFFFDc');
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
    expect(reasonFromHeaders(`X-Amavis-Alert: INFECTED, message contains virus: ${'Gr\\x{C3}\\x{BC}n '.repeat(30)}\n\n`)).toMatch(/^virus: (Grün )+Grün…$/);
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
    const msg = (timeNum: number, mailId: string) => ({ partitionTag: 0, mailId, timeNum, contentCode: 'S', subject: 's', sender: 'a@b.example', score: 9, reason: '' });
    const view = await digestView({ config, templates: {} as never, now }, {
      recipient: 'alice@example.com', total: 2, timeZone: null, from: null, to: { time: now, mailId: 'AAAAAAAAAAAA' },
      messages: [msg(now - 86400, 'BBBBBBBBBBBB'), msg(now - 3600, 'CCCCCCCCCCCC')],
    });
    const expiry = async (url: string) => {
      const r = await verifyLink(secret, url.split('/a/')[1]!, now);
      if (!r.ok) throw new Error(r.reason);
      return r.claims.expires;
    };
    expect(await expiry(view.messages[0]!.release_url)).toBe(now - 86400 + 2 * 86400);
    expect(await expiry(view.messages[1]!.delete_url)).toBe(now - 3600 + 2 * 86400);
  });
});
