import type { Kysely } from 'kysely';
import type { SchemaVariant } from '../amavis/schema.ts';
import type { Database } from '../db/types.ts';
import { generateMessages, type GenerateOptions } from './generate.ts';
import { writeMessages } from './writer.ts';

/** Fill a database with generated quarantine data, batch by batch (memory stays flat). */
export async function seedDemo(db: Kysely<Database>, v: SchemaVariant, opts: GenerateOptions): Promise<number> {
  let n = 0;
  for (const batch of generateMessages(opts)) {
    await writeMessages(db, v, batch);
    n += batch.length;
  }
  return n;
}
