import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { pgPipeline } from '../../src/db/pg-pipeline.js';
import { prepared } from '../../src/db/prepared.js';
import { freshDatabase, TEST_DB } from '../helpers/server.js';

/**
 * The pipelined transaction when its connection is lost (the primary killed, a failover): a
 * write sent without awaiting its answer fails the transaction at COMMIT, and nothing else
 * (before this was handled, the un-awaited write's rejection ended the process).
 */
describe('a pipelined transaction whose connection is lost', { skip: TEST_DB !== 'postgres' && 'the pipeline is PostgreSQL only' }, () => {
  let fresh: { url: string; drop(): Promise<void> };
  let database: Database;

  before(async () => {
    fresh = await freshDatabase();
    database = await connectDatabase({ url: fresh.url, poolSize: 2 });
    await sql`create table pipeline_probe (n int)`.execute(database.db);
  });
  after(async () => {
    await database?.close();
    await fresh?.drop();
  });

  test('fails at COMMIT, and an un-awaited write raises no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const insert = prepared((db, p: { n: number }) => db.insertInto('pipeline_probe' as never).values({ n: p.n } as never));
      const pid = prepared((db) => db.selectNoFrom(sql<number>`pg_backend_pid()`.as('pid')));
      const pipe = pgPipeline(database.db)!;
      await assert.rejects(
        pipe.transaction(async (tx) => {
          const [row] = await tx.all(pid, {});
          // Another session ends this one, as a dying primary would.
          await sql`select pg_terminate_backend(${(row as { pid: number }).pid})`.execute(database.db);
          tx.run(insert, { n: 1 });
        }),
      );
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(unhandled, []);
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from pipeline_probe`.execute(database.db);
      assert.equal(rows[0]!.n, 0, 'nothing of the transaction was committed');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

/**
 * A pipelined transaction's statements go out in one socket write, however large: postgres.js
 * sent what it had as soon as a kilobyte had accumulated, so a flight holding an event's JSON
 * took two writes (two system calls, two wake-ups of the server process) (patches/postgres+3.4.9.patch).
 */
describe('a pipelined flight', { skip: TEST_DB !== 'postgres' && 'the pipeline is PostgreSQL only' }, () => {
  let fresh: { url: string; drop(): Promise<void> };
  let database: Database;

  before(async () => {
    fresh = await freshDatabase();
    database = await connectDatabase({ url: fresh.url, poolSize: 1 });
    await sql`create table flight_probe (n int, body text)`.execute(database.db);
  });
  after(async () => {
    await database?.close();
    await fresh?.drop();
  });

  test('of statements past a kilobyte is one socket write, and commits', async () => {
    const insert = prepared((db, p: { n: number; body: string }) => db.insertInto('flight_probe' as never).values({ n: p.n, body: p.body } as never));
    const pipe = pgPipeline(database.db)!;
    // Once first, so the statement is prepared and the flight below carries only Bind/Execute.
    await pipe.transaction(async (tx) => {
      tx.run(insert, { n: 0, body: '' });
    });
    const writes: number[] = [];
    const write = net.Socket.prototype.write;
    net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
      if (this.remotePort === Number(new URL(fresh.url).port || 5432)) writes.push(Buffer.byteLength(args[0] as Buffer));
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } as typeof write;
    try {
      await pipe.transaction(async (tx) => {
        tx.run(insert, { n: 1, body: 'x'.repeat(3000) });
        tx.run(insert, { n: 2, body: 'y' });
        tx.run(insert, { n: 3, body: 'z'.repeat(1500) });
      });
    } finally {
      net.Socket.prototype.write = write;
    }
    assert.equal(writes.length, 1, `writes of ${writes.join(', ')} bytes`);
    assert.ok(writes[0]! > 4500);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from flight_probe where n > 0`.execute(database.db);
    assert.equal(rows[0]!.n, 3);
  });
});
