import { isStoredAddress } from '../amavis/address.ts';
import { signLink, verifyLink } from '../digest/links.ts';

/**
 * The digest's "see all my quarantined mail" link is a digest link (src/digest/links.ts) with
 * action 'portal': HMAC-SHA256 under LINK_SECRET over (action, mailbox, expiry). The pages accept it
 * at /ui/portal/{token}; these two functions are the pages' view of that one format.
 */
export interface PortalClaim {
  mailbox: string;
  /** epoch seconds */
  expires: number;
  /** the API key that minted it (a digest preview): the link and its sessions live as long as that key */
  keyId?: string;
}

export function signPortalToken(secret: string, mailbox: string, expires: number): Promise<string> {
  return signLink(secret, { action: 'portal', partitionTag: null, mailId: null, recipient: mailbox, expires });
}

export type PortalCheck = { ok: true; claim: PortalClaim } | { ok: false; reason: 'invalid' | 'expired' };

export async function verifyPortalToken(secret: string, token: string, nowSeconds: number): Promise<PortalCheck> {
  const r = await verifyLink(secret, token, nowSeconds);
  if (!r.ok) return { ok: false, reason: r.reason === 'expired' ? 'expired' : 'invalid' };
  // Only a portal link opens the portal: a release or delete link for one message does not.
  if (r.claims.action !== 'portal') return { ok: false, reason: 'invalid' };
  // The pages serve the deployment's own database: a registered gateway's link must not open its
  // mailbox's mail here (another database's), so it is refused until the pages know gateways.
  if (r.claims.gateway !== undefined) return { ok: false, reason: 'invalid' };
  // The digest signs the address exactly as amavisd stored it (quotes, '|', 254 characters...).
  const mailbox = r.claims.recipient;
  if (!isStoredAddress(mailbox)) return { ok: false, reason: 'invalid' };
  return { ok: true, claim: { mailbox, expires: r.claims.expires, ...(r.claims.keyId === undefined ? {} : { keyId: r.claims.keyId }) } };
}
