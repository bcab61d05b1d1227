import { sql } from 'kysely';
import { bind } from '../../src/amavis/schema.ts';
import { writeMessages, type AmavisMessage, type Written } from '../../src/demo/writer.ts';
import type { TestApp } from './app.ts';

/** Write messages as amavisd would, and remember them for removal. */
export class Fixtures {
  written: Written[] = [];
  constructor(private t: TestApp) {}

  async add(...messages: AmavisMessage[]): Promise<string[]> {
    const w = await writeMessages(this.t.handle.db, this.t.variant, messages);
    this.written.push(...w);
    return w.map((x) => `${x.partitionTag}.${x.mailId}`);
  }

  async rs(id: string): Promise<string[]> {
    const [p, mailId] = id.split('.') as [string, string];
    const { rows } = await sql<{ rs: string }>`SELECT rs FROM msgrcpt WHERE partition_tag = ${Number(p)}
      AND mail_id = ${bind(this.t.variant, 'msgrcpt.mail_id', mailId)} ORDER BY rseqnum`.execute(this.t.handle.db);
    return rows.map((r) => r.rs.trim() || ' ');
  }

  async chunks(id: string): Promise<number> {
    const [p, mailId] = id.split('.') as [string, string];
    const { rows } = await sql<{ n: number | string }>`SELECT count(*) AS n FROM quarantine WHERE partition_tag = ${Number(p)}
      AND mail_id = ${bind(this.t.variant, 'quarantine.mail_id', mailId)}`.execute(this.t.handle.db);
    return Number(rows[0]!.n);
  }

  async cleanup(): Promise<void> {
    for (const w of this.written) {
      for (const table of ['quarantine', 'msgrcpt', 'msgs'] as const) {
        await sql`DELETE FROM ${sql.table(table)} WHERE partition_tag = ${w.partitionTag}
          AND mail_id = ${bind(this.t.variant, `${table}.mail_id`, w.mailId)}`.execute(this.t.handle.db);
      }
    }
    this.written = [];
  }
}
