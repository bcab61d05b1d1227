import { describe, expect, it } from 'vitest';
import { classifyDatabaseFailure } from '../../src/db/errors.ts';

const err = (fields: Record<string, unknown>) => Object.assign(new Error(String(fields.message ?? '')), fields);

describe('database failures are classified as dependency failures (503), not bugs', () => {
  it('names the table and privilege of a MySQL/MariaDB privilege error', () => {
    expect(
      classifyDatabaseFailure(
        err({
          code: 'ER_TABLEACCESS_DENIED_ERROR',
          errno: 1142,
          message: "UPDATE command denied to user 'qe'@'127.0.0.1' for table `amavisd`.`msgrcpt`",
        }),
      ),
    ).toMatchObject({ kind: 'permission', table: 'msgrcpt', privilege: 'UPDATE' });
    expect(
      classifyDatabaseFailure(
        err({
          code: 'ER_TABLEACCESS_DENIED_ERROR',
          errno: 1142,
          message: "SELECT command denied to user 'qe'@'localhost' for table 'msgs'",
        }),
      ),
    ).toMatchObject({ kind: 'permission', table: 'msgs', privilege: 'SELECT' });
    expect(
      classifyDatabaseFailure(
        err({
          code: 'ER_COLUMNACCESS_DENIED_ERROR',
          errno: 1143,
          message: "SELECT command denied to user 'qe'@'localhost' for column 'secret_id' in table 'msgs'",
        }),
      ),
    ).toMatchObject({ kind: 'permission', table: 'msgs', privilege: 'SELECT' });
    expect(
      classifyDatabaseFailure(
        err({
          code: 'ER_DBACCESS_DENIED_ERROR',
          errno: 1044,
          message: "Access denied for user 'qe'@'%' to database 'amavisd'",
        }),
      ),
    ).toMatchObject({ kind: 'permission', table: 'amavisd' });
  });

  it('names the table of a PostgreSQL 42501 and the failed statement as the privilege', () => {
    expect(
      classifyDatabaseFailure(err({ code: '42501', message: 'permission denied for table wblist', qeStatement: 'DELETE' })),
    ).toMatchObject({ kind: 'permission', table: 'wblist', privilege: 'DELETE' });
  });

  it("treats a command on a closed mysql2 connection, and pg's unqueryable client, as a lost connection", () => {
    expect(classifyDatabaseFailure(new Error("Can't add new command when connection is in closed state"))).toMatchObject({
      kind: 'unavailable',
    });
    expect(classifyDatabaseFailure(new Error('Client has encountered a connection error and is not queryable'))).toMatchObject({
      kind: 'unavailable',
    });
    expect(classifyDatabaseFailure(err({ code: 'ER_CONNECTION_KILLED', errno: 1927, message: 'Connection was killed' }))).toMatchObject({
      kind: 'unavailable',
    });
  });

  it('treats statement, lock and our own deadlines as timeouts', () => {
    for (const e of [
      err({ code: '57014', message: 'canceling statement due to statement timeout' }),
      err({ code: '55P03', message: 'canceling statement due to lock timeout' }),
      err({ code: 'ER_LOCK_WAIT_TIMEOUT', errno: 1205, message: 'Lock wait timeout exceeded' }),
      err({ code: 'ER_STATEMENT_TIMEOUT', errno: 1969, message: 'Query execution was interrupted (max_statement_time exceeded)' }),
      err({ code: 'QE_DB_TIMEOUT', message: 'the database did not answer within 5000 ms' }),
    ])
      expect(classifyDatabaseFailure(e)).toMatchObject({ kind: 'timeout' });
  });

  it('leaves a bad query alone (a bug: 500)', () => {
    expect(classifyDatabaseFailure(err({ code: '42703', message: 'column "nope" does not exist' }))).toBeNull();
    expect(
      classifyDatabaseFailure(err({ code: 'ER_PARSE_ERROR', errno: 1064, message: 'You have an error in your SQL syntax' })),
    ).toBeNull();
  });
});
