/** maddr.domain holds the domain with its labels reversed: mail.example.com -> com.example.mail */
export function reverseDomain(domain: string): string {
  return domain.split('.').reverse().join('.');
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1);
}

/**
 * What amavisd stores: lowercased; IDN domains as A-labels. URL's host parser does the
 * UTS-46 mapping, which exists in every runtime we target.
 */
export function normalizeDomain(domain: string): string | null {
  const d = domain.trim().toLowerCase().replace(/\.$/, '');
  // WHATWG URL parsing silently drops tabs and newlines: refuse every control character first.
  if (d === '' || d.length > 253 || /[\x00-\x20\x7f]/.test(d)) return null;
  if (/^[a-z0-9.-]+$/.test(d)) return /(^|\.)-|-(\.|$)|\.\./.test(d) ? null : d;
  try {
    const host = new URL(`http://${d}/`).hostname;
    return /^[a-z0-9.-]+$/.test(host) ? host : null;
  } catch {
    return null;
  }
}

/** A mailbox address as amavisd stores it, or null when it is not one. */
export function normalizeAddress(address: string): string | null {
  const a = address.trim();
  const at = a.lastIndexOf('@');
  if (at <= 0 || a.length > 254) return null;
  const local = a.slice(0, at);
  if (!/^[\x21-\x7e\u0080-\uffff]{1,64}$/.test(local) || /["\\<>()[\],;:@]/.test(local)) return null;
  const domain = normalizeDomain(a.slice(at + 1));
  return domain ? `${local.toLowerCase()}@${domain}` : null;
}

/**
 * An address as amavisd may have stored it in maddr.email (lowercased RFC 5321 form, cut to 255
 * characters, unprintables as '?'): quoted local parts, '|', spaces inside quotes are all possible.
 * For values this server signed itself (links), not for input a person typed (normalizeAddress).
 */
export function isStoredAddress(address: string): boolean {
  return address.length <= 255 && address.lastIndexOf('@') > 0 && !/[\x00-\x1f\x7f]/.test(address);
}
