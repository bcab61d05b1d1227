import { sql } from 'kysely';
import { bind, text } from '../amavis/schema.ts';
import type { Deps } from '../deps.ts';
import type { AuditEntryView } from './list.ts';

/**
 * The subjects of a page of audit entries' messages, in one statement by msgs' key, while
 * amavisd still stores them. The entries are already in the caller's scope (their domains), and so
 * are their messages.
 */
export async function withSubjects(deps: Deps, items: AuditEntryView[]): Promise<void> {
  const withId = items.filter((i) => i.mail_id);
  const ids = [...new Set(withId.map((i) => i.mail_id!))];
  if (ids.length === 0) return;
  const parts = [...new Set(withId.map((i) => i.partition_tag ?? 0))];
  // both key columns as lists: a range on msgs' primary key (partition_tag, mail_id) on MariaDB and
  // PostgreSQL; the pairs that were not asked for are left out below
  const { rows } = await sql<{ partition_tag: number | string; mail_id: unknown; subject: unknown }>`
    SELECT partition_tag, mail_id, subject FROM msgs
    WHERE partition_tag IN (${sql.join(parts)})
    AND mail_id IN (${sql.join(ids.map((id) => bind(deps.variant, 'msgs.mail_id', id)))})`.execute(deps.db);
  const subjects = new Map(rows.map((r) => [`${Number(r.partition_tag)}.${text(r.mail_id)}`, text(r.subject)]));
  for (const i of items) if (i.mail_id) i.subject = subjects.get(`${i.partition_tag ?? 0}.${i.mail_id}`) ?? null;
}
