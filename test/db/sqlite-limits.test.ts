import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { connectDatabase, withConstantLimits, type Database } from '../../src/db/connect.js';
import type { Db } from '../../src/db/schema.js';
import { sqliteSync, type SqliteSync } from '../../src/db/sqlite-sync.js';
import { TEST_DB } from '../helpers/server.js';

// SQLite only: PostgreSQL plans a prepared statement without the values bound to it.
describe('SQLite statements with a bound LIMIT stay prepared', { skip: TEST_DB !== 'sqlite' }, () => {
  let dir: string;
  let conn: Database;
  let fast: SqliteSync;
  const ROOMS = 100;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-limits-'));
    conn = await connectDatabase({ url: join(dir, 'l.db') });
    // Several indexes the planner weighs for each subquery, as it does for the events table's.
    await sql`create table limit_t (room text not null, pos integer not null, depth integer not null, id text not null)`.execute(conn.db);
    for (const cols of ['room, pos', 'room, depth, pos', 'room, id', 'room, pos, id, depth', 'pos', 'id, room']) {
      await sql.raw(`create index limit_t_${cols.replace(/, /g, '_')} on limit_t (${cols})`).execute(conn.db);
    }
    const rows = Array.from({ length: ROOMS * 20 }, (_, i) => sql`(${`r${i % ROOMS}`}, ${i}, ${i}, ${`id${i}`})`);
    await sql`insert into limit_t (room, pos, depth, id) values ${sql.join(rows)}`.execute(conn.db);
    fast = sqliteSync(conn.db)!;
  });
  after(async () => {
    await conn.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('LIMIT and OFFSET parameters are cast, so the planner does not read them', () => {
    assert.equal(withConstantLimits('select * from t order by x limit ? offset ?'), 'select * from t order by x limit cast(? as integer) offset cast(? as integer)');
    assert.equal(withConstantLimits('select * from t LIMIT ?'), 'select * from t LIMIT cast(? as integer)');
    assert.equal(withConstantLimits('select * from t limit 5'), 'select * from t limit 5');
  });

  it('Kysely limit and offset still page as before', async () => {
    const db = conn.db as unknown as Db;
    const page = await db
      .selectFrom('limit_t' as never)
      .select('pos' as never)
      .where('room' as never, '=', 'r1' as never)
      .orderBy('pos' as never)
      .limit(3)
      .offset(2)
      .execute();
    assert.deepEqual(
      page.map((r) => (r as { pos: number }).pos),
      [201, 301, 401],
    );
  });

  it('a hundred LIMIT ? subqueries run about as fast as with the limit written in', async () => {
    // Without the cast each run prepares the statement again, which takes longer than running it
    // here (about 1.7 times as long in all; 4 times with the events table's columns and indexes).
    const one = (limit: string) => `select * from (select room, pos from limit_t where room = ? order by pos desc limit ${limit})`;
    const bound = Array.from({ length: ROOMS }, () => one('?')).join(' union all ');
    const written = Array.from({ length: ROOMS }, () => one('11')).join(' union all ');
    const boundParams = Array.from({ length: ROOMS }, (_, i) => [`r${i}`, 11]).flat();
    const writtenParams = Array.from({ length: ROOMS }, (_, i) => `r${i}`);
    const time = (text: string, params: unknown[]): Promise<number> =>
      fast.read((tx) => {
        const t0 = performance.now();
        assert.equal(tx.rawRows(text, params).length, ROOMS * 11);
        return performance.now() - t0;
      });
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < 60; i++) {
      a.push(await time(bound, boundParams));
      b.push(await time(written, writtenParams));
    }
    const median = (xs: number[]) => xs.sort((x, y) => x - y)[xs.length >> 1]!;
    const ratio = median(a) / median(b);
    assert.ok(ratio < 1.3, `a bound limit ran ${ratio.toFixed(1)} times as long as a written one`);
  });
});
