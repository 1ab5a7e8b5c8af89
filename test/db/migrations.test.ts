import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { runMigrations } from '../../src/db/migrate.js';
import { ALL_MIGRATIONS } from '../../src/homeserver.js';
import type { Kysely } from 'kysely';
import type { StatementSink } from '../../src/db/pg-pipeline.js';
import type { Prepared } from '../../src/db/prepared.js';
import { openSpanVia } from '../../src/push/member-spans-store.js';
import { insertOutcomeVia } from '../../src/push/push-outcomes-store.js';
import { selectUnreadSince } from '../../src/push/unread-counts-store.js';
import { freshDatabase } from '../helpers/server.js';

const ROOM = '!room:example.org';
const ALICE = '@alice:example.org';
const BOB = '@bob:example.org';

function actionRow(userId: string, eventId: string, pos: number) {
  return { user_id: userId, room_id: ROOM, event_id: eventId, stream_pos: pos, notify: 1, highlight: 0, actions: '["notify"]', ts: 1 };
}

describe('Schema upgrades keep what the older schema held', () => {
  let fresh: { url: string; drop(): Promise<void> };
  let database: Database;

  before(async () => {
    fresh = await freshDatabase();
    database = await connectDatabase({ url: fresh.url, sqliteSynchronous: 'NORMAL', poolSize: 2 });
    // The first schema of every domain, as a server of that version left it.
    const first = ALL_MIGRATIONS.map((d) => ({ ...d, migrations: d.migrations.filter((m) => m.version === 1) }));
    await runMigrations(database.db, database.dialect, first);
    await (database.db as unknown as Kysely<any>).insertInto('event_push_actions').values([actionRow(ALICE, '$a', 5), actionRow(BOB, '$a', 5), actionRow(ALICE, '$b', 9)]).execute();
    await database.db.insertInto('forward_extremities').values({ room_id: ROOM, event_id: '$b' }).execute();
  });

  after(async () => {
    await database.close();
    await fresh.drop();
  });

  it('upgrades push actions (to per-event outcomes) and forward extremities in place, and they keep working', async () => {
    const ran = await runMigrations(database.db, database.dialect, ALL_MIGRATIONS);
    assert.ok(ran.some((r) => r.startsWith('rooms/2 ')), ran.join(', '));
    assert.ok(ran.some((r) => r.startsWith('push/2 ')), ran.join(', '));
    assert.ok(ran.some((r) => r.startsWith('push/3 ')), ran.join(', '));

    // Each old row is an exception of its event's outcome; each user has a span over their rows.
    const outcomes = await database.db.selectFrom('push_outcomes').select(['stream_pos', 'event_id', 'base']).orderBy('stream_pos').execute();
    assert.deepEqual(outcomes.map((r) => [Number(r.stream_pos), r.event_id, r.base]), [[5, '$a', 0], [9, '$b', 0]]);
    const rows = await database.db.selectFrom('push_outcome_exceptions').select(['user_id', 'stream_pos', 'level']).orderBy('user_id').orderBy('stream_pos').execute();
    assert.deepEqual(rows.map((r) => [r.user_id, Number(r.stream_pos), r.level]), [[ALICE, 5, 1], [ALICE, 9, 1], [BOB, 5, 1]]);
    const ext = await database.db.selectFrom('forward_extremities').selectAll().execute();
    assert.deepEqual(ext, [{ room_id: ROOM, event_id: '$b' }]);

    const count = async (user: string) => (await selectUnreadSince(database.db, user, [{ roomId: ROOM, after: 0 }]))[0]!.notify;
    assert.equal(await count(ALICE), 2);
    assert.equal(await count(BOB), 1);

    // A new event notifying everyone joined (both open a span after the upgrade), written twice (a retried batch): counted once.
    const write = async (fn: (tx: StatementSink) => void) => {
      const statements: [Prepared<object, unknown>, object][] = [];
      fn({ run: (q, p) => statements.push([q as Prepared<object, unknown>, p]) });
      for (const [q, p] of statements) await q.execute(database.db, p);
    };
    const outcome = { room_id: ROOM, stream_pos: 12, event_id: '$c', sender: '@carol:example.org', base: 1, actions: '["notify"]', ts: 2 };
    await write((tx) => {
      openSpanVia(tx, ALICE, ROOM, 11);
      openSpanVia(tx, BOB, ROOM, 11);
      insertOutcomeVia(tx, outcome, []);
    });
    await write((tx) => insertOutcomeVia(tx, outcome, []));
    assert.equal(await count(ALICE), 3);
    assert.equal(await count(BOB), 2);

    // Applied once: a second start finds nothing to do.
    assert.deepEqual(await runMigrations(database.db, database.dialect, ALL_MIGRATIONS), []);
  });
});
