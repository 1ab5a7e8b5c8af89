import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { runMigrations } from '../../src/db/migrate.js';
import { ALL_MIGRATIONS } from '../../src/homeserver.js';
import { countUnread, insertPushActions } from '../../src/push/push-actions-store.js';
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
    await database.db.insertInto('event_push_actions').values([actionRow(ALICE, '$a', 5), actionRow(BOB, '$a', 5), actionRow(ALICE, '$b', 9)]).execute();
    await database.db.insertInto('forward_extremities').values({ room_id: ROOM, event_id: '$b' }).execute();
  });

  after(async () => {
    await database.close();
    await fresh.drop();
  });

  it('upgrades push actions and forward extremities in place, and they keep working', async () => {
    const ran = await runMigrations(database.db, database.dialect, ALL_MIGRATIONS);
    assert.ok(ran.some((r) => r.startsWith('rooms/2 ')), ran.join(', '));
    assert.ok(ran.some((r) => r.startsWith('push/2 ')), ran.join(', '));

    const rows = await database.db.selectFrom('event_push_actions').select(['user_id', 'event_id', 'stream_pos']).orderBy('user_id').orderBy('stream_pos').execute();
    assert.deepEqual(
      rows.map((r) => [r.user_id, r.event_id, Number(r.stream_pos)]),
      [[ALICE, '$a', 5], [ALICE, '$b', 9], [BOB, '$a', 5]],
    );
    const ext = await database.db.selectFrom('forward_extremities').selectAll().execute();
    assert.deepEqual(ext, [{ room_id: ROOM, event_id: '$b' }]);

    // Writing the same event's actions again (a retried batch) adds nothing; counting reads the new key.
    await insertPushActions(database.db, [actionRow(ALICE, '$b', 9)]);
    await insertPushActions(database.db, [actionRow(ALICE, '$c', 12), actionRow(BOB, '$c', 12)]);
    const counts = await countUnread(database.db, ALICE, [ROOM]);
    assert.deepEqual(counts, [{ room_id: ROOM, notify: 3, highlight: 0 }]);

    // Applied once: a second start finds nothing to do.
    assert.deepEqual(await runMigrations(database.db, database.dialect, ALL_MIGRATIONS), []);
  });
});
