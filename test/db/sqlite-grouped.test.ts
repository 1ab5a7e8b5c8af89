import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { prepared } from '../../src/db/prepared.js';
import { sqliteSync, type SqliteSync } from '../../src/db/sqlite-sync.js';
import type { Db } from '../../src/db/schema.js';
import { TEST_DB } from '../helpers/server.js';

// SQLite only: grouped writes are the synchronous SQLite path's (PostgreSQL has its own pipelined one).
const insert = prepared((db, p: { k: string }) => (db as unknown as Db).insertInto('grouped_t' as never).values({ k: p.k } as never));

describe('grouped SQLite writes share one transaction, each under its own savepoint', { skip: TEST_DB !== 'sqlite' }, () => {
  let dir: string;
  let conn: Database;
  let fast: SqliteSync;
  let observer: BetterSqlite3.Database;
  const committed = () => (observer.prepare('select k from grouped_t order by k').all() as { k: string }[]).map((r) => r.k);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-grouped-'));
    conn = await connectDatabase({ url: join(dir, 'g.db') });
    await sql`create table grouped_t (k text primary key)`.execute(conn.db);
    fast = sqliteSync(conn.db)!;
    // A second connection sees only what was committed.
    observer = new BetterSqlite3(join(dir, 'g.db'), { readonly: true });
  });
  after(async () => {
    observer.close();
    await conn.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes made in one turn of the event loop commit together', async () => {
    let seenFromOutside: string[] = [];
    const writes = [
      fast.grouped((tx) => tx.run(insert, { k: 'a1' })),
      fast.grouped((tx) => tx.run(insert, { k: 'a2' })),
      fast.grouped((tx) => {
        tx.run(insert, { k: 'a3' });
        // The first two are written but not committed yet: they are in this transaction.
        seenFromOutside = committed();
        return 'third';
      }),
    ];
    assert.deepEqual(await Promise.all(writes), [1, 1, 'third']);
    assert.deepEqual(seenFromOutside, []);
    assert.deepEqual(committed(), ['a1', 'a2', 'a3']);
  });

  it('a write that throws is rolled back alone and its caller gets the error; the others commit', async () => {
    const results = await Promise.allSettled([
      fast.grouped((tx) => tx.run(insert, { k: 'b1' })),
      fast.grouped((tx) => {
        tx.run(insert, { k: 'b2' });
        tx.run(insert, { k: 'b1' }); // a duplicate key: the whole write fails
        return 'never';
      }),
      fast.grouped((tx) => tx.run(insert, { k: 'b3' })),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.match(String((results[1] as PromiseRejectedResult).reason), /UNIQUE/);
    assert.deepEqual(committed().filter((k) => k.startsWith('b')), ['b1', 'b3'], 'b2 went with its write');
  });

  it('a write alone is its own transaction, rolled back whole when it throws', async () => {
    await assert.rejects(
      fast.grouped((tx) => {
        tx.run(insert, { k: 'c1' });
        throw new Error('refused');
      }),
      /refused/,
    );
    assert.equal(await fast.grouped((tx) => tx.run(insert, { k: 'c2' })), 1);
    assert.deepEqual(committed().filter((k) => k.startsWith('c')), ['c2']);
  });
});
