import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import postgres from 'postgres';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { pgPipeline } from '../../src/db/pg-pipeline.js';
import { prepared } from '../../src/db/prepared.js';
import { freshDatabase, TEST_DB } from '../helpers/server.js';

/**
 * The connection pool when the server ends its connections, as a dying primary and a failover do
 * (the fixes are in patches/postgres+3.4.9.patch). Before them, one node of a cluster stopped
 * answering for good after about one database failover in three: a transaction waiting for a
 * connection was handed nothing when the connection it waited for was reopened, and statements
 * sent on a lost connection were carried over to the next one and waited there for an answer
 * that never came, until every connection of the pool was stuck.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what}: no answer within ${ms} ms`)))]);

describe('the PostgreSQL pool when the server ends its connections', { skip: TEST_DB !== 'postgres' && 'the pool is PostgreSQL only' }, () => {
  let fresh: { url: string; drop(): Promise<void> };
  let admin: postgres.Sql;
  const opened: Database[] = [];

  before(async () => {
    fresh = await freshDatabase();
    admin = postgres(fresh.url, { max: 1, onnotice: () => {} });
    await admin`create table loss_probe (n int)`;
  });
  after(async () => {
    for (const d of opened) await d.close().catch(() => {});
    await admin?.end({ timeout: 1 });
    await fresh?.drop();
  });

  async function open(url: string, poolSize: number): Promise<Database> {
    const d = await connectDatabase({ url, poolSize });
    opened.push(d);
    return d;
  }

  /** Ends every session of the test database but the admin's own, as a primary's crash does. */
  async function killSessions(): Promise<number> {
    const rows = await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
    return rows.length;
  }

  test('a transaction waiting for the only connection gets it when that connection is lost and reopened', async () => {
    const database = await open(fresh.url, 1);
    const db = database.db;
    let holding!: () => void;
    const held = new Promise<void>((r) => (holding = r));
    let letGo!: () => void;
    const gate = new Promise<void>((r) => (letGo = r));
    const holder = db.transaction().execute(async (tx) => {
      await sql`select 1`.execute(tx);
      holding();
      await gate;
      await sql`insert into loss_probe values (1)`.execute(tx);
    });
    await held;
    const waiter = db.transaction().execute(async (tx) => {
      await sql`insert into loss_probe values (2)`.execute(tx);
    });
    await sleep(50);
    assert.equal(await killSessions(), 1, 'the holder was the pool’s one session');
    await sleep(200);
    letGo();
    await assert.rejects(holder, 'the holder’s connection is gone, and its transaction with it');
    await within(waiter, 5000, 'the waiting transaction');
    const { rows } = await within(sql<{ n: number }>`select n from loss_probe order by n`.execute(db), 5000, 'a query after');
    assert.deepEqual(rows.map((r) => r.n), [2], 'only the waiting transaction committed');
  });

  test('statements in flight on a lost connection fail, and the pool carries on (a URL with several hosts)', async () => {
    // The same server twice, as a cluster's URL lists its members: postgres.js then treats a failure
    // while connecting as a reason to try the next host rather than to fail the queries.
    const u = new URL(fresh.url);
    const twoHosts = fresh.url.replace(`@${u.host}/`, `@${u.host},${u.host}/`);
    const database = await open(twoHosts, 3);
    const db = database.db;
    const pipe = pgPipeline(db)!;
    const insert = prepared((d, p: { n: number }) => d.insertInto('loss_probe' as never).values({ n: p.n } as never));
    const WORKERS = 8;
    const lastDone = new Array<number>(WORKERS).fill(0);
    let stop = false;
    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      while (!stop) {
        try {
          if (w % 2) {
            await pipe.transaction(async (tx) => {
              tx.run(insert, { n: 100 + w });
              await tx.all(prepared((d) => d.selectNoFrom(sql<number>`pg_sleep(0.01)`.as('s'))), {});
            });
          } else {
            await db.transaction().execute(async (tx) => {
              await sql`select pg_sleep(0.01)`.execute(tx);
              await sql`insert into loss_probe values (${w})`.execute(tx);
            });
          }
          lastDone[w] = performance.now();
        } catch {
          await sleep(10);
        }
      }
    });
    try {
      for (let i = 0; i < 12; i++) {
        await sleep(150);
        await killSessions();
      }
      const killedAt = performance.now();
      // Every worker finishes a transaction again soon after the last kill.
      const end = killedAt + 5000;
      while (lastDone.some((t) => t < killedAt) && performance.now() < end) await sleep(50);
      const stuck = lastDone.flatMap((t, w) => (t < killedAt ? [w] : []));
      assert.deepEqual(stuck, [], 'workers with no transaction done in the 5 s after the last kill');
    } finally {
      stop = true;
      await within(Promise.all(workers), 10_000, 'the workers stopping');
    }
  });
});
