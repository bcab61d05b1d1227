import { hmacSha256Sync, toHex as hex } from '../crypto/sha256.ts';

/**
 * Message-IDs of the mail we write (RFC 5322 3.6.4: "<" id-left "@" id-right ">"). The left part is
 * hex (a dot-atom-text), the right part the host of PUBLIC_URL (a host name, an IPv4 address or an
 * IPv6 literal in brackets: dot-atom-text or no-fold-literal), so the ID is valid and says nothing
 * about the recipient.
 */

export function messageIdHost(publicUrl: string): string {
  try {
    const host = new URL(publicUrl).hostname;
    if (/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(host) || /^\[[0-9A-Fa-f:.]+\]$/.test(host)) return host;
  } catch {
    // PUBLIC_URL is checked by the config parser; a value without a usable host falls through
  }
  return 'localhost';
}

/** A new ID for a one-off email (a portal link): 128 random bits. */
export function randomMessageId(host: string): string {
  return `<${hex(crypto.getRandomValues(new Uint8Array(16)))}@${host}>`;
}

/**
 * A digest's ID: an HMAC (LINK_SECRET) of its send key, so every digest has its own, and the same
 * digest sent again after a crash (SMTP is at least once) carries the same ID: mail clients that
 * drop duplicates by Message-ID drop it. Keyed, so the recipient cannot be guessed from it.
 */
export function digestMessageId(secret: string, sendKey: string, host: string): string {
  return `<${hex(hmacSha256Sync(secret, `message-id|${sendKey}`).subarray(0, 16))}.d@${host}>`;
}
