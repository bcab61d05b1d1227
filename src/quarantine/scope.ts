import { sql, type RawBuilder } from 'kysely';
import { reverseDomain } from '../amavis/address.ts';
import { bind, type SchemaVariant } from '../amavis/schema.ts';
import type { Identity } from '../auth/identity.ts';

/**
 * The condition on a recipient row (maddr alias `r`) that limits it to what `who` may see.
 * Every query that touches recipients goes through here.
 */
export function recipientScope(who: Identity, v: SchemaVariant, alias = 'r'): RawBuilder<boolean> {
  if (who.role === 'admin') return sql<boolean>`1 = 1`;
  if (who.role === 'user') {
    return sql<boolean>`${sql.ref(`${alias}.email`)} = ${bind(v, 'maddr.email', who.mailbox)}`;
  }
  if (who.domains.length === 0) return sql<boolean>`1 = 0`;
  const domains = who.domains.map((d) => bind(v, 'maddr.domain', reverseDomain(d)));
  return sql<boolean>`${sql.ref(`${alias}.domain`)} IN (${sql.join(domains)})`;
}
