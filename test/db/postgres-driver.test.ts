import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { freshDatabase, TEST_DB } from '../helpers/server.js';

/**
 * A query Kysely built runs as a prepared statement even without parameters (postgres.js would
 * send it by the simple protocol, parsed and planned on every call: the stream heads each /sync
 * reads); raw SQL without parameters keeps the simple protocol, which allows several statements.
 */
describe('statements on PostgreSQL', { skip: TEST_DB !== 'postgres' && 'PostgreSQL only' }, () => {
  let fresh: { url: string; drop(): Promise<void> };
  let database: Database;

  before(async () => {
    fresh = await freshDatabase();
    // One connection: the prepared statements read back are that connection's.
    database = await connectDatabase({ url: fresh.url, poolSize: 1 });
    await sql`create table driver_probe (n int); insert into driver_probe values (1), (2)`.execute(database.db);
  });
  after(async () => {
    await database?.close();
    await fresh?.drop();
  });

  test('a built query without parameters is prepared once; raw SQL with several statements still runs', async () => {
    const db = database.db as unknown as import('kysely').Kysely<{ driver_probe: { n: number } }>;
    for (let i = 0; i < 3; i++) assert.deepEqual((await db.selectFrom('driver_probe').select('n').orderBy('n').execute()).map((r) => r.n), [1, 2]);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_prepared_statements where statement like ${'select "n" from "driver_probe"%'}`.execute(database.db);
    assert.equal(rows[0]!.n, 1);
    await sql`update driver_probe set n = n + 10; update driver_probe set n = n + 100`.execute(database.db);
    assert.deepEqual((await db.selectFrom('driver_probe').select('n').orderBy('n').execute()).map((r) => r.n), [111, 112]);
  });
});
