import { sql } from 'kysely';
import type { TestApp } from './app.ts';

/**
 * Make the database refuse msgrcpt.rs := R (or D) for one mail_id, as a revoked privilege or a
 * failing disk would (a trigger on this run's own test database); returns the undo.
 */
export async function refuseStatusWrite(t: TestApp, mailId: string, rs = 'R'): Promise<() => Promise<void>> {
  const db = t.handle.db;
  const name = `qe_test_refuse_${mailId.replace(/[^A-Za-z0-9]/g, '_')}`;
  if (t.variant.dialect === 'mysql') {
    await sql
      .raw(`CREATE TRIGGER ${name} BEFORE UPDATE ON msgrcpt FOR EACH ROW
      BEGIN IF NEW.rs = '${rs}' AND NEW.mail_id = '${mailId}' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; END IF; END`)
      .execute(db);
    return async () => void (await sql.raw(`DROP TRIGGER ${name}`).execute(db));
  }
  const idExpr = t.variant.binary.has('msgrcpt.mail_id') ? `convert_from(NEW.mail_id, 'UTF8')` : 'NEW.mail_id::text';
  await sql
    .raw(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      IF NEW.rs = '${rs}' AND ${idExpr} = '${mailId}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`)
    .execute(db);
  await sql.raw(`CREATE TRIGGER ${name} BEFORE UPDATE ON msgrcpt FOR EACH ROW EXECUTE FUNCTION ${name}()`).execute(db);
  return async () => {
    await sql.raw(`DROP TRIGGER ${name} ON msgrcpt`).execute(db);
    await sql.raw(`DROP FUNCTION ${name}()`).execute(db);
  };
}
