import { base64url, base64urlDecode } from '../crypto/hmac.ts';

/**
 * mail_id and secret_id are base64url strings; amavisd derives
 * mail_id = first 12 chars of base64url(md5(decoded secret_id)). Older amavisd used '+' and '-'.
 */
export const MAIL_ID_PATTERN = /^[A-Za-z0-9_+-]{1,16}$/;

/**
 * The API's id for a message: "<partition_tag>.<mail_id>"; the partition is part of its identity.
 * A message of a registered gateway is "<gateway>:<partition_tag>.<mail_id>" (README "Gateways: who
 * sees what"); the deployment's own database's ids carry no prefix, as before gateways.
 */
export const ITEM_ID_PATTERN = /^(?:([a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?):)?(\d{1,9})\.([A-Za-z0-9_+-]{1,16})$/;

export interface MailKey {
  partitionTag: number;
  mailId: string;
}

/** The id within one gateway's database (no prefix): what our own tables and maps key by. */
export function formatItemId(key: MailKey): string {
  return `${key.partitionTag}.${key.mailId}`;
}

/** The id a caller sees: with the gateway's prefix unless it is the deployment's own database (''). */
export function publicItemId(gateway: string, key: MailKey): string {
  return gateway ? `${gateway}:${formatItemId(key)}` : formatItemId(key);
}

/**
 * The key an id names in `gateway`'s database ('' the deployment's own), or null: an id of another
 * gateway never names a message here (it would be another message with the same key).
 */
export function parseItemId(id: string, gateway = ''): MailKey | null {
  const parsed = parseGatewayItemId(id);
  return parsed && parsed.gateway === gateway ? parsed.key : null;
}

/** The gateway ('' the deployment's own) and key an id names, or null. */
export function parseGatewayItemId(id: string): { gateway: string; key: MailKey } | null {
  const m = ITEM_ID_PATTERN.exec(id);
  if (!m) return null;
  const partitionTag = Number(m[2]);
  if (!Number.isSafeInteger(partitionTag) || partitionTag > 2147483647) return null;
  return { gateway: m[1] ?? '', key: { partitionTag, mailId: m[3]! } };
}

/** MD5 is not in Web Crypto; this small implementation (RFC 1321) is only for this derivation. */
function md5(data: Uint8Array): Uint8Array {
  const s = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
  const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);
  const len = data.length;
  const words = ((len + 8) >>> 6) + 1;
  const buf = new Uint8Array(words * 64);
  buf.set(data);
  buf[len] = 0x80;
  const view = new DataView(buf.buffer);
  view.setUint32(buf.length - 8, (len * 8) >>> 0, true);
  view.setUint32(buf.length - 4, Math.floor(len / 0x20000000), true);
  let a0 = 0x67452301,
    b0 = 0xefcdab89,
    c0 = 0x98badcfe,
    d0 = 0x10325476;
  for (let off = 0; off < buf.length; off += 64) {
    let A = a0,
      B = b0,
      C = c0,
      D = d0;
    for (let i = 0; i < 64; i++) {
      let F: number, g: number;
      if (i < 16) {
        F = (B & C) | (~B & D);
        g = i;
      } else if (i < 32) {
        F = (D & B) | (~D & C);
        g = (5 * i + 1) % 16;
      } else if (i < 48) {
        F = B ^ C ^ D;
        g = (3 * i + 5) % 16;
      } else {
        F = C ^ (B | ~D);
        g = (7 * i) % 16;
      }
      const sh = s[(i >>> 4) * 4 + (i % 4)]!;
      F = (F + A + K[i]! + view.getUint32(off + g * 4, true)) >>> 0;
      A = D;
      D = C;
      C = B;
      B = (B + ((F << sh) | (F >>> (32 - sh)))) >>> 0;
    }
    a0 = (a0 + A) >>> 0;
    b0 = (b0 + B) >>> 0;
    c0 = (c0 + C) >>> 0;
    d0 = (d0 + D) >>> 0;
  }
  const out = new Uint8Array(16);
  const ov = new DataView(out.buffer);
  [a0, b0, c0, d0].forEach((v, i) => ov.setUint32(i * 4, v, true));
  return out;
}

export function mailIdOfSecret(secretId: string): string {
  return base64url(md5(base64urlDecode(secretId) ?? new Uint8Array())).slice(0, 12);
}

/**
 * A secret_id as amavisd makes one (Amavis::Util::generate_mail_id): retried until the derived
 * mail_id starts and ends with a letter or digit, which amavisd's AM.PDP insists on.
 */
export function randomSecretId(): string {
  for (;;) {
    const secret = base64url(crypto.getRandomValues(new Uint8Array(9)));
    if (/^[A-Za-z0-9].*[A-Za-z0-9]$/.test(mailIdOfSecret(secret))) return secret;
  }
}
