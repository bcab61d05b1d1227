/**
 * Who is asking. Every verb takes one and limits every query to what it may see. `keyId` /
 * `keyName`: the API key that acts, or that minted the link or portal session acting (audit rows
 * name it); null for the bootstrap admin, the CLI, jobs and a digest's own links.
 */
export type Identity =
  | { role: 'admin'; actor: string; keyId: string | null; keyName?: string | null }
  | { role: 'domain_admin'; actor: string; keyId: string; keyName?: string | null; domains: readonly string[] }
  | { role: 'user'; actor: string; keyId: string | null; keyName?: string | null; mailbox: string };

export type Role = Identity['role'];
export const ROLES = ['admin', 'domain_admin', 'user'] as const;

/** May this identity act for this recipient address? (Addresses are normalized, lowercase.) */
export function canSeeRecipient(who: Identity, address: string): boolean {
  if (who.role === 'admin') return true;
  if (who.role === 'user') return address === who.mailbox;
  const domain = address.slice(address.lastIndexOf('@') + 1);
  return who.domains.includes(domain);
}
