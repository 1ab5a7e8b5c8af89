import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import type { CacheInvalidation, StreamAdvance } from '../../src/cluster/bus.js';
import { insertInvalidations } from '../../src/cluster/cache-invalidations-table.js';
import { eventsBetween, headsAndEventsAfter } from '../../src/cluster/events-catch-up.js';
import { InvalidationPruner } from '../../src/cluster/invalidation-pruner.js';
import { LocalLeases } from '../../src/cluster/leases.js';
import { PgBus, splitPoke, type PgBusOptions } from '../../src/cluster/pg-bus.js';
import { EVENT_CACHE } from '../../src/rooms/pipeline/pipeline.js';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { runMigrations } from '../../src/db/migrate.js';
import { nextPositions, readAllCounters } from '../../src/db/stream-positions.js';
import { ALL_MIGRATIONS } from '../../src/homeserver.js';
import { createLogger } from '../../src/logger.js';
import { freshDatabase } from '../helpers/server.js';
import { NEEDS_PG } from './cluster-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A bus of `nodeId` on the database at `url` (read through `db`), with short test timings unless `opts` says otherwise. */
function testBus(url: string, db: Database['db'], nodeId: string, opts: Partial<PgBusOptions> = {}): PgBus {
  return new PgBus({
    url,
    db,
    nodeId,
    logger: createLogger('silent'),
    now: () => Date.now(),
    headsAndEventsAfter: (x, n) => headsAndEventsAfter(db, x, n),
    eventsBetween: (x, y, n) => eventsBetween(db, x, y, n),
    pollMs: 300,
    heartbeatMs: 200,
    silenceMs: 700,
    ...opts,
  });
}

test('a poke too big for one NOTIFY is split, and an audience too long to carry becomes "everyone"', () => {
  const users = Array.from({ length: 2000 }, (_, i) => `@user${i}:example.org`);
  const a: StreamAdvance[] = Array.from({ length: 300 }, (_, i) => ({ stream: 'receipts', pos: i + 1, userIds: [`@u${i}:example.org`], roomId: `!room${i}:example.org` }));
  a.push({ stream: 'device_lists', pos: 7, userIds: users });
  const payloads = splitPoke({ n: 'node', a, i: [{ cache: 'access_tokens', key: 'h' }] });
  assert.ok(payloads.length > 1);
  for (const p of payloads) assert.ok(Buffer.byteLength(p) < 8000, `payload of ${Buffer.byteLength(p)} bytes`);
  const back = payloads.map((p) => JSON.parse(p) as { n: string; a?: StreamAdvance[]; i?: CacheInvalidation[] });
  const advances = back.flatMap((p) => p.a ?? []);
  assert.equal(advances.length, 301);
  assert.deepEqual(advances.at(-1), { stream: 'device_lists', pos: 7, everyone: true });
  assert.deepEqual(back.flatMap((p) => p.i ?? []), [{ cache: 'access_tokens', key: 'h' }]);
  assert.ok(back.every((p) => p.n === 'node'));
});

/** The bus between nodes (CLUSTER.md 3): pokes are hints, the stream tables the truth. */
describe('PostgreSQL bus', { skip: NEEDS_PG }, () => {
  let fresh: { url: string; drop(): Promise<void> };
  let database: Database;
  let a: PgBus;
  let b: PgBus;
  const heardB: StreamAdvance[] = [];
  const invalidatedB: CacheInvalidation[] = [];
  const heardA: StreamAdvance[] = [];

  const bus = (nodeId: string, pollMs = 300) => testBus(fresh.url, database.db, nodeId, { pollMs });

  before(async () => {
    fresh = await freshDatabase();
    database = await connectDatabase({ url: fresh.url, poolSize: 3 });
    await runMigrations(database.db, database.dialect, ALL_MIGRATIONS);
    a = bus('node-a');
    b = bus('node-b');
    await a.start();
    await b.start();
    a.onAdvance((m) => heardA.push(m));
    b.onAdvance((m) => heardB.push(m));
    b.onInvalidate((m) => invalidatedB.push(m));
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await database?.close();
    await fresh?.drop();
  });

  async function until(pred: () => boolean, ms: number, what: string): Promise<number> {
    const t0 = Date.now();
    while (!pred()) {
      if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
      await sleep(10);
    }
    return Date.now() - t0;
  }

  test("another node hears an advance with its audience, the publisher hears it once", async () => {
    const msg: StreamAdvance = { stream: 'to_device', pos: 1, userIds: ['@bob:example.org'] };
    a.publish(msg);
    await until(() => heardB.some((m) => m.stream === 'to_device' && m.pos === 1), 2000, 'b hears a');
    assert.deepEqual(heardB.find((m) => m.stream === 'to_device'), msg);
    await sleep(100);
    assert.equal(heardA.filter((m) => m.stream === 'to_device').length, 1);
  });

  test('an invalidation committed without any poke is applied by settle(), before the request reads', async () => {
    await database.db.transaction().execute((trx) => insertInvalidations(trx, [{ cache: 'access_tokens', key: 'revoked-hash' }], Date.now()));
    await b.settle();
    assert.ok(invalidatedB.some((m) => m.key === 'revoked-hash'));
  });

  test('a stream advanced without a poke (a lost one) wakes everyone behind it at the next poll', async () => {
    const pos = await database.db.transaction().execute((trx) => nextPositions(trx, 'receipts', 1));
    const ms = await until(() => heardB.some((m) => m.stream === 'receipts' && m.pos === pos && m.everyone === true), 3000, 'poll repairs');
    console.log(`lost poke repaired after ${ms} ms`);
  });

  test('a listener whose connection was cut reconnects and catches up with what it missed', async () => {
    const admin = postgres(fresh.url, { max: 1, onnotice: () => {} });
    try {
      // Both buses' listeners go; changes meanwhile reach b only through the tables.
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'hearth-bus-listener'`;
      await database.db.transaction().execute((trx) => insertInvalidations(trx, [{ cache: 'push_rules', key: '@carol:example.org' }], Date.now()));
      await until(() => invalidatedB.some((m) => m.key === '@carol:example.org'), 5000, 'caught up');
      // And pokes flow again.
      await until(() => b.listening, 5000, 'listening');
      a.publish({ stream: 'account_data', pos: 99, userIds: ['@dan:example.org'] });
      await until(() => heardB.some((m) => m.stream === 'account_data' && m.pos === 99), 5000, 'pokes again');
    } finally {
      await admin.end();
    }
  });

  test("a node's own events right after what it has seen are not read back; another node's in between is, once", async () => {
    const reads: Array<[number, number]> = [];
    const heard: number[] = [];
    const d = new PgBus({
      url: fresh.url,
      db: database.db,
      nodeId: 'node-d',
      logger: createLogger('silent'),
      now: () => Date.now(),
      pollMs: 60_000,
      // Every position stands for an event of one room; a read that finds events is recorded.
      headsAndEventsAfter: async (after) => {
        const heads = await readAllCounters(database.db);
        const upTo = heads.get('events') ?? 0;
        const advances: StreamAdvance[] = [];
        for (let pos = after + 1; pos <= upTo; pos++) advances.push({ stream: 'events', pos, roomId: '!r:example.org' });
        if (advances.length > 0) reads.push([after, upTo]);
        return { heads, events: { advances, invalidations: [], readTo: Math.max(after, upTo) } };
      },
      eventsBetween: async () => assert.fail('one read holds every event here'),
    });
    d.onAdvance((m) => {
      if (m.stream === 'events') heard.push(m.pos);
    });
    await d.start();
    try {
      const take = () => database.db.transaction().execute((trx) => nextPositions(trx, 'events', 1));
      const own = async () => {
        const pos = await take();
        d.publish({ stream: 'events', pos, roomId: '!r:example.org' });
        return pos;
      };
      const p1 = await own();
      const p2 = await own();
      await d.settle();
      assert.deepEqual(reads, []);
      const theirs = await take();
      const p4 = await own();
      await d.settle();
      assert.deepEqual(reads, [[p2, p4]]);
      assert.deepEqual(heard, [p1, p2, p4, theirs]);
      // Seen up to p4 now: the next own event is contiguous again.
      await own();
      await d.settle();
      assert.equal(reads.length, 1);
    } finally {
      await d.close();
    }
  });

  test('a catch-up reads every counter and the events after a position in one statement, a chunk at a time', async () => {
    const first = await database.db.transaction().execute(async (trx) => {
      const pos = await nextPositions(trx, 'events', 3);
      const row = (i: number, type: string, more: { state_key?: string; redacts?: string }) => ({
        event_id: `$catchup${pos + i}`,
        room_id: '!catchup:example.org',
        stream_pos: pos + i,
        depth: i + 1,
        type,
        sender: '@s:example.org',
        origin_server_ts: 0,
        json: '{}',
        ...more,
      });
      await trx
        .insertInto('events')
        .values([row(0, 'm.room.message', {}), row(1, 'm.room.member', { state_key: '@m:example.org' }), row(2, 'm.room.redaction', { redacts: '$gone' })] as never)
        .execute();
      return pos;
    });
    const head = first + 2;
    const one = await headsAndEventsAfter(database.db, first - 1, 2);
    assert.equal(one.heads.get('events'), head);
    assert.deepEqual(one.heads, await readAllCounters(database.db));
    assert.deepEqual(one.events, {
      advances: [
        { stream: 'events', pos: first, roomId: '!catchup:example.org' },
        { stream: 'events', pos: first + 1, roomId: '!catchup:example.org', userIds: ['@m:example.org'] },
      ],
      invalidations: [],
      readTo: first + 1,
    });
    const two = await eventsBetween(database.db, first + 1, head, 2);
    assert.deepEqual(two, { advances: [{ stream: 'events', pos: head, roomId: '!catchup:example.org' }], invalidations: [{ cache: EVENT_CACHE, key: '$gone' }], readTo: head });
    const none = await headsAndEventsAfter(database.db, head, 2);
    assert.deepEqual(none.events, { advances: [], invalidations: [], readTo: head });
  });

  test('invalidations pruned before a node read them make it drop every cached entry', async () => {
    const c = bus('node-c', 60_000);
    const flushed: CacheInvalidation[] = [];
    c.onInvalidate((m) => flushed.push(m));
    await c.start();
    try {
      const hourAgo = Date.now() - 2 * 3600_000;
      await database.db.transaction().execute((trx) => insertInvalidations(trx, [{ cache: 'push_rules', key: '@x:example.org' }, { cache: 'access_tokens', key: 'y' }], hourAgo));
      const pruner = new InvalidationPruner({ db: database.db, leases: new LocalLeases(), logger: createLogger('silent'), now: () => Date.now() });
      assert.ok((await pruner.prune()) >= 2);
      await c.settle();
      assert.deepEqual(flushed, [{ cache: '*', key: '*' }]);
    } finally {
      await c.close();
    }
  });
});

describe('PostgreSQL bus, a node alone on its database', { skip: NEEDS_PG }, () => {
  let fresh: { url: string; drop(): Promise<void> };
  let database: Database;
  before(async () => {
    fresh = await freshDatabase();
    database = await connectDatabase({ url: fresh.url, poolSize: 3 });
    await runMigrations(database.db, database.dialect, ALL_MIGRATIONS);
  });
  after(async () => {
    await database?.close();
    await fresh?.drop();
  });

  test('settle() reads nothing while no other node is heard, and reads once one is', async () => {
    let reads = 0;
    const node = (nodeId: string) =>
      testBus(fresh.url, database.db, nodeId, {
        headsAndEventsAfter: (x, n) => {
          if (nodeId === 'solo') reads++;
          return headsAndEventsAfter(database.db, x, n);
        },
        pollMs: 60_000,
        heartbeatMs: 100,
        // Long beside the heartbeat, so that a slow moment of a loaded machine does not read as silence.
        silenceMs: 1500,
      });
    const solo = node('solo');
    const revoked: CacheInvalidation[] = [];
    const heard: StreamAdvance[] = [];
    solo.onInvalidate((m) => revoked.push(m));
    solo.onAdvance((m) => heard.push(m));
    await solo.start();
    let other: PgBus | undefined;
    try {
      // Just started: it cannot know yet whether it is alone, so it reads.
      await solo.settle();
      assert.equal(reads, 1);
      await sleep(1700);
      await solo.settle();
      assert.equal(reads, 1, 'alone: nothing to read');
      // Another node starts, and is heard.
      other = node('other');
      await other.start();
      other.publish({ stream: 'to_device', pos: 1, userIds: ['@x:example.org'] });
      for (let i = 0; !heard.some((m) => m.stream === 'to_device'); i++) {
        if (i > 500) assert.fail('the other node is not heard');
        await sleep(10);
      }
      // What it committed without a poke yet (a token revoked a moment ago) is read before the request.
      await database.db.transaction().execute((trx) => insertInvalidations(trx, [{ cache: 'access_tokens', key: 'revoked-elsewhere' }], Date.now()));
      await solo.settle();
      assert.equal(reads, 2);
      assert.ok(revoked.some((m) => m.key === 'revoked-elsewhere'));
      // The other node gone and silent: alone again.
      await other.close();
      other = undefined;
      await sleep(1700);
      await solo.settle();
      assert.equal(reads, 2);
    } finally {
      await other?.close();
      await solo.close();
    }
  });
});
