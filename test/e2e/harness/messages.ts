// Test messages that make amavisd-new reach each verdict with no network:
//   gtube -> S (SpamAssassin's GTUBE, score ~1000)      blacklisted -> S (sender on the harness blacklist)
//   bannedAttachment -> B (invoice.exe)                 badHeader -> H (raw 8-bit Subject)
//   eicar -> V (grep-based scanner in the harness config) clean -> C (delivered to the sink)
// Every message gets a unique Message-ID, which is how tests find its msgs row.
import { randomUUID } from 'node:crypto';

export interface Mail {
  from: string;
  to: string[];
  /** A string goes out as UTF-8; bytes go out as they are (badHeader needs raw 8-bit bytes). */
  raw: string | Uint8Array;
  messageId: string;
  subject: string;
  /** The content code amavisd gives it with the harness config. */
  expect: 'S' | 'B' | 'H' | 'V' | 'C';
}

/** The sender the harness config blacklists: mail from it is spam without SpamAssassin. */
export const BLACKLISTED_SENDER = 'spammer@spam.test';

export const GTUBE_STRING = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
export const EICAR_STRING = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

function list(to: string | string[]): string[] {
  return Array.isArray(to) ? to : [to];
}

function headers(kind: string, from: string, to: string[], subject: string, extra: string[] = []) {
  const messageId = `<${kind}.${randomUUID()}@client.e2e.test>`;
  const lines = [
    `From: <${from}>`,
    `To: ${to.map((t) => `<${t}>`).join(', ')}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: ${messageId}`,
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    ...extra,
  ];
  return { messageId, head: lines.join('\r\n') };
}

function textMail(kind: string, expect: Mail['expect'], from: string, to: string | string[], body: string, subject?: string): Mail {
  const rcpts = list(to);
  const subj = subject ?? `e2e ${kind}`;
  const { messageId, head } = headers(kind, from, rcpts, subj, [
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
  ]);
  return { from, to: rcpts, raw: `${head}\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}`, messageId, subject: subj, expect };
}

function withAttachment(
  kind: string,
  expect: Mail['expect'],
  from: string,
  to: string | string[],
  text: string,
  file: { name: string; type: string; content: Buffer },
): Mail {
  const rcpts = list(to);
  const subj = `e2e ${kind}`;
  const boundary = `=_qe_e2e_${randomUUID()}`;
  const { messageId, head } = headers(kind, from, rcpts, subj, [`Content-Type: multipart/mixed; boundary="${boundary}"`]);
  const b64 = file.content.toString('base64').replace(/.{76}/g, '$&\r\n');
  const raw = [
    head,
    '',
    'This is a multi-part message in MIME format.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    '',
    text,
    '',
    `--${boundary}`,
    `Content-Type: ${file.type}; name="${file.name}"`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${file.name}"`,
    '',
    b64,
    '',
    `--${boundary}--`,
    '',
  ].join('\r\n');
  return { from, to: rcpts, raw, messageId, subject: subj, expect };
}

export function clean(from: string, to: string | string[], subject?: string): Mail {
  return textMail('clean', 'C', from, to, 'Hello, this is a clean test message.\n', subject);
}

/** Spam by content: needs SpamAssassin (install.sh installs it by default). */
export function gtube(from: string, to: string | string[]): Mail {
  return textMail('gtube', 'S', from, to, `GTUBE follows:\n\n${GTUBE_STRING}\n`);
}

/** Spam by sender: works with or without SpamAssassin. */
export function blacklisted(to: string | string[]): Mail {
  return textMail('blacklisted', 'S', BLACKLISTED_SENDER, to, 'Buy now! (the sender is blacklisted in the harness config)\n');
}

export function bannedAttachment(from: string, to: string | string[]): Mail {
  return withAttachment('banned', 'B', from, to, 'Invoice attached.', {
    name: 'invoice.exe',
    type: 'application/octet-stream',
    content: Buffer.from('MZ\x90\x00 not really an exe', 'latin1'),
  });
}

export function eicar(from: string, to: string | string[]): Mail {
  return withAttachment('eicar', 'V', from, to, 'EICAR test file attached.', {
    name: 'eicar.com.txt',
    type: 'application/octet-stream',
    content: Buffer.from(EICAR_STRING, 'latin1'),
  });
}

/**
 * Raw (unencoded) ISO-8859-1 bytes in the Subject: amavisd's bad-header check (BadHdr8bit).
 * Valid raw UTF-8 there is accepted by amavisd 2.13 (content C), so the bytes must not be UTF-8.
 */
export function badHeader(from: string, to: string | string[]): Mail {
  const m = textMail('badheader', 'H', from, to, 'body\n', 'e2e badheader \u00e9t\u00e9');
  return { ...m, raw: Buffer.from(m.raw as string, 'latin1') };
}
