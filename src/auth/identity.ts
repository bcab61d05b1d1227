/**
 * Who is asking. Every verb takes one and limits every query to what it may see. `keyId` /
 * `keyName`: the API key that acts, or that minted the link or portal session acting (audit rows
 * name it); null for the bootstrap admin, the CLI, jobs and a digest's own links.
 *
 * Gateways (README "Gateways: who sees what"): `gateway` is where the identity acts, the gateway
 * whose amavisd database the request's Deps read ('' or absent: the deployment's own database,
 * DATABASE_URL). A domain admin or user key belongs to one gateway; an admin key with `gateways`
 * is a gateway admin (an admin inside those gateways only); an admin without is the deployment's.
 * src/gateways/context.ts sets `gateway` when a request enters a gateway.
 */
export type Identity =
  | {
      role: 'admin';
      actor: string;
      keyId: string | null;
      keyName?: string | null;
      gateway?: string;
      /** a gateway admin's gateways ('' is the deployment's own); absent: every gateway of the deployment */
      gateways?: readonly string[];
    }
  | { role: 'domain_admin'; actor: string; keyId: string; keyName?: string | null; domains: readonly string[]; gateway?: string }
  | { role: 'user'; actor: string; keyId: string | null; keyName?: string | null; mailbox: string; gateway?: string };

export type Role = Identity['role'];
export const ROLES = ['admin', 'domain_admin', 'user'] as const;

/** The deployment's own amavisd database (DATABASE_URL), as a gateway id: item ids carry no prefix. */
export const HOME_GATEWAY = '';

/** May this identity act for this recipient address? (Addresses are normalized, lowercase.) */
export function canSeeRecipient(who: Identity, address: string): boolean {
  if (who.role === 'admin') return true;
  if (who.role === 'user') return address === who.mailbox;
  const domain = address.slice(address.lastIndexOf('@') + 1);
  return who.domains.includes(domain);
}

/** An admin of the whole deployment: keys, the gateway registry and other deployment-wide matters. */
export function isDeploymentAdmin(who: Identity): boolean {
  return who.role === 'admin' && who.gateways === undefined;
}

/**
 * The gateways this identity may enter: 'all' for the deployment's admins, else the list. A domain
 * admin's or user's key belongs to one (its `gateway`, '' when absent).
 */
export function gatewaysOf(who: Identity): 'all' | readonly string[] {
  if (who.role === 'admin') return who.gateways ?? 'all';
  return [who.gateway ?? HOME_GATEWAY];
}

/** May `who` enter gateway `id` at all? (What it then sees there is limited as everywhere.) */
export function maySeeGateway(who: Identity, id: string): boolean {
  const g = gatewaysOf(who);
  return g === 'all' || g.includes(id);
}

/** The gateway an identity acts in ('' the deployment's own). */
export function actingGateway(who: Identity): string {
  return who.gateway ?? HOME_GATEWAY;
}

/**
 * Does this identity act in the deployment's own database only (or everywhere, a deployment admin)?
 * Routes that serve that database alone (admin digests, the API's routes not yet gateway-aware)
 * refuse a key of a registered gateway rather than show it the deployment's own rows. (The pages
 * act in one gateway per session instead: src/ui/session.ts pageGateway.)
 */
export function actsAtHome(who: Identity): boolean {
  const g = gatewaysOf(who);
  return g === 'all' || (g.length === 1 && g[0] === HOME_GATEWAY);
}
