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
  /** a registered gateway's digest link: the mailbox is in that gateway's database, and its session acts there */
  gateway?: string;
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
  // The digest signs the address exactly as amavisd stored it (quotes, '|', 254 characters...).
  const mailbox = r.claims.recipient;
  if (!isStoredAddress(mailbox)) return { ok: false, reason: 'invalid' };
  const claim: PortalClaim = { mailbox, expires: r.claims.expires };
  if (r.claims.keyId !== undefined) claim.keyId = r.claims.keyId;
  if (r.claims.gateway !== undefined) claim.gateway = r.claims.gateway;
  return { ok: true, claim };
}
