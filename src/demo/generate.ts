import type { AmavisMessage } from './writer.ts';

/**
 * Deterministic quarantine data that looks like a busy gateway's: every content type, multi-
 * recipient mail across domains, MIME with attachments, RFC 2047 and emoji subjects, in-flight
 * rows (content NULL), log-only rows, several partitions. Only reserved names (example.*, .test,
 * 192.0.2.0/24) appear.
 */
export interface GenerateOptions {
  messages: number;
  /** epoch seconds of the newest message */
  now: number;
  seed?: number;
  domains?: number;
  mailboxesPerDomain?: number;
  /** spread messages over this many seconds before `now` */
  spanSeconds?: number;
  /**
   * The options below shape a gateway-scale quarantine (the benchmark's); left unset, the demo's
   * data stays exactly as before.
   */
  /** share of messages with 2..4 recipients (default 0.15; 0.07 gives ~1.2 recipients a message) */
  multiRecipientRate?: number;
  /** distinct envelope senders, picked with a skew (a few senders send much); default: 8 fixed ones */
  senders?: number;
  /**
   * 'gateway': msgs.size follows a log-normal distribution (median ~6 KB, banned/virus larger,
   * capped at 25 MB) and the stored text is padded up to min(size, storedTextCap)
   */
  sizes?: 'demo' | 'gateway';
  /** upper bound of the stored text in 'gateway' mode (default 4096 bytes) */
  storedTextCap?: number;
}

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

export function demoDomains(n: number): string[] {
  const base = ['example.com', 'example.net', 'example.org'];
  return Array.from({ length: n }, (_, i) => (i < base.length ? base[i]! : `d${i}.example.org`));
}

const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'oscar'];
const SENDERS = [
  'billing@invoices.example',
  'promo@deals.example',
  'noreply@bank-secure.example',
  'newsletter@shop.example',
  'hr@partner.example',
  'ceo@spoof.example',
  'postmaster@relay.example',
  '',
];

// content code -> weight, and what a message of that kind looks like
const KINDS: Array<[string, number]> = [
  ['S', 40],
  ['Y', 12],
  ['V', 6],
  ['B', 10],
  ['H', 6],
  ['M', 4],
  ['U', 3],
  ['O', 2],
  ['T', 1],
  ['C', 1],
  ['?', 1],
  ['s', 1],
];
const SUBJECTS = [
  'Your invoice #{n} is overdue',
  'Congratulations! You won a 🎁 gift card',
  'Re: meeting notes — Q{q} planning',
  'Überweisung bestätigt: Nr. {n}',
  '【重要】アカウントの確認 {n}',
  'Password expires today 🔐',
  'Shipment {n} could not be delivered',
  '<script>alert("x")</script> 50% off {{total}}',
  'Payroll update for {q} quarter',
  'Scanned document from copier {n}',
];

function encodeWord(s: string): string {
  if (/^[\x20-\x7e]*$/.test(s)) return s;
  const b = btoa(String.fromCharCode(...new TextEncoder().encode(s)));
  return `=?UTF-8?B?${b}?=`;
}

/** A standard normal deviate (Box-Muller). */
function gauss(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Message size in bytes at a gateway: log-normal, attachments (banned, virus) larger. */
function gatewaySize(kind: string, rand: () => number): number {
  const median = kind === 'V' || kind === 'B' ? 60_000 : kind === 'O' ? 12_000_000 : 6_000;
  return Math.max(400, Math.min(25_000_000, Math.round(median * Math.exp(1.1 * gauss(rand)))));
}

function mime(kind: string, from: string, to: string[], subject: string, id: string, date: Date, pad: number): string {
  const head =
    `Return-Path: <${from}>\nReceived: from mx.sender.example (mx.sender.example [192.0.2.${(id.charCodeAt(0) % 200) + 1}])\n\tby mx1.example.net (Postfix) with ESMTPS id ${id}\n` +
    `From: ${from ? `"Sender" <${from}>` : '<>'}\nTo: ${to.join(', ')}\nSubject: ${encodeWord(subject)}\n` +
    `Date: ${date.toUTCString().replace('GMT', '+0000')}\nMessage-ID: <${id}@sender.example>\nMIME-Version: 1.0\n`;
  const text = `Hello,\n\nThis is a demo message of kind ${kind}.\n${'Lorem ipsum dolor sit amet. '.repeat(pad)}\n`;
  const html = `<html><body><p>Hello,</p><p>Demo message <b>${kind}</b>. <img src="https://tracker.example/p.gif"><a href="https://phish.example/login">Log in</a></p></body></html>`;
  if (kind === 'V' || kind === 'B') {
    const name = kind === 'V' ? 'eicar.com' : 'invoice.exe';
    const body = kind === 'V' ? 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' : 'MZ demo executable bytes';
    return (
      head +
      `Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain; charset=utf-8\n\n${text}\n--b1\n` +
      `Content-Type: application/octet-stream; name="${name}"\nContent-Disposition: attachment; filename="${name}"\nContent-Transfer-Encoding: base64\n\n` +
      `${btoa(body)}\n--b1--\n`
    );
  }
  if (kind === 'H' || kind === 'M') {
    return head + `Content-Type: text/plain\n\n${text}`;
  }
  return (
    head +
    `Content-Type: multipart/alternative; boundary="b2"\n\n--b2\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n${text}\n--b2\n` +
    `Content-Type: text/html; charset=utf-8\n\n${html}\n--b2--\n`
  );
}

export function* generateMessages(opts: GenerateOptions, batch = 500): Generator<AmavisMessage[]> {
  const rand = rng(opts.seed ?? 42);
  const domains = demoDomains(opts.domains ?? 3);
  const perDomain = opts.mailboxesPerDomain ?? 6;
  const span = opts.spanSeconds ?? 14 * 86400;
  const total = KINDS.reduce((n, [, w]) => n + w, 0);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const mailbox = () => {
    const d = pick(domains);
    const u = Math.floor(rand() * perDomain);
    return `${u < USERS.length ? USERS[u] : `user${u}`}@${d}`;
  };
  const multi = opts.multiRecipientRate ?? 0.15;
  const senderCount = opts.senders ?? 0;
  const gateway = opts.sizes === 'gateway';
  const cap = opts.storedTextCap ?? 4096;
  const pickSender =
    senderCount > 0
      ? () => {
          // skewed: a few senders account for much of the mail, as at a real gateway
          const k = Math.floor(senderCount * rand() ** 3);
          return k % 50 === 49 ? '' : `s${k}@m${k % 5000}.sender.example`;
        }
      : () => pick(SENDERS);
  let out: AmavisMessage[] = [];
  for (let i = 0; i < opts.messages; i++) {
    let r = rand() * total;
    let kind = 'S';
    for (const [k, w] of KINDS)
      if ((r -= w) < 0) {
        kind = k;
        break;
      }
    const nr = rand() < multi ? 2 + Math.floor(rand() * 3) : 1;
    const rcpts = [...new Set(Array.from({ length: nr }, mailbox))];
    const sender = pickSender();
    const subject = pick(SUBJECTS)
      .replace('{n}', String(1000 + i))
      .replace('{q}', String(1 + (i % 4)));
    const timeNum = opts.now - Math.floor((i / Math.max(1, opts.messages)) * span) - Math.floor(rand() * 60);
    const score =
      kind === 'S' || kind === 's'
        ? 8 + Math.round(rand() * 400) / 10
        : kind === 'Y'
          ? 5 + Math.round(rand() * 20) / 10
          : Math.round(rand() * 30) / 10;
    const roll = rand();
    const inFlight = roll < 0.01;
    const logOnly = !inFlight && roll < 0.11;
    const id = `${i.toString(36)}${Math.floor(rand() * 1e6).toString(36)}`;
    let pad = rand() < 0.05 ? 800 : Math.floor(rand() * 20);
    const size = gateway ? gatewaySize(kind, rand) : undefined;
    // ~28 bytes a pad unit, ~1 KB of headers and parts around it
    if (size !== undefined) pad = Math.max(0, Math.floor((Math.min(size, cap) - 1100) / 28));
    out.push({
      partitionTag: i % 17 === 0 ? 1 : 0,
      timeNum,
      content: inFlight ? null : logOnly ? 'C' : kind,
      quarType: logOnly ? '' : 'Q',
      sender,
      recipients: rcpts.map((address) => ({ address, score, ds: logOnly ? 'P' : 'D' })),
      subject,
      fromHeader: sender ? `"Sender" <${sender}>` : '',
      spamLevel: score,
      messageId: `<${id}@sender.example>`,
      clientAddr: `192.0.2.${(i % 250) + 1}`,
      raw: mime(kind, sender, rcpts, subject, id, new Date(timeNum * 1000), pad),
      ...(size !== undefined ? { size } : {}),
    });
    if (out.length >= batch) {
      yield out;
      out = [];
    }
  }
  if (out.length) yield out;
}
