import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import postgres from 'postgres';
import { isDatabaseUnavailable } from '../../src/db/unavailable.js';
import { REFUSED_PORT, TEST_DB } from '../helpers/server.js';

const PG_URL = process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Which errors of the PostgreSQL client say "the database is out of reach" (answered 503) rather than "this statement failed". */
describe('isDatabaseUnavailable', { skip: TEST_DB !== 'postgres' && 'classifies PostgreSQL client errors' }, () => {
  async function errorOf(url: string, text: string): Promise<unknown> {
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql.unsafe(text);
    } catch (e) {
      return e;
    } finally {
      await sql.end({ timeout: 1 });
    }
    throw new Error(`${text} did not fail`);
  }

  test('a refused connection and a connection ended by the server are; a failing statement is not', async () => {
    const refused = new URL(PG_URL);
    refused.port = String(REFUSED_PORT);
    assert.equal(isDatabaseUnavailable(await errorOf(refused.toString(), 'select 1')), true, 'connection refused');
    assert.equal(isDatabaseUnavailable(await errorOf(PG_URL, 'select pg_terminate_backend(pg_backend_pid())')), true, 'session ended by the server');
    assert.equal(isDatabaseUnavailable(await errorOf(PG_URL, 'select * from no_such_table')), false, 'undefined table');
    assert.equal(isDatabaseUnavailable(await errorOf(PG_URL, 'select 1/0')), false, 'division by zero');
    assert.equal(isDatabaseUnavailable(new Error('anything else')), false);
  });
});
