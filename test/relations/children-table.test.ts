import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { runMigrations } from '../../src/db/migrate.js';
import { ALL_MIGRATIONS } from '../../src/homeserver.js';
import { insertRelations, selectChildren, type RelationRow } from '../../src/relations/relations-table.js';
import { freshDatabase } from '../helpers/server.js';

const ROOM = '!room:example.org';
const PARENTS = 1_200;

/**
 * selectChildren is what bundled aggregations read for every timeline event
 * of a /sync: a thousand parents and more. On SQLite it reads outside Kysely,
 * in chunks of a thousand parents; inside a transaction it goes through
 * Kysely. Both must give the same rows.
 */
describe('The children of many parents (selectChildren)', () => {
  let fresh: { url: string; drop(): Promise<void> };
  let database: Database;
  const rows: RelationRow[] = [];

  before(async () => {
    fresh = await freshDatabase();
    database = await connectDatabase({ url: fresh.url, sqliteSynchronous: 'NORMAL', poolSize: 2 });
    await runMigrations(database.db, database.dialect, ALL_MIGRATIONS);
    let pos = 10_000;
    const child = (parent: number, relType: string, depth: number, aggregationKey: string | null = null): RelationRow => ({
      event_id: `$c${pos}`,
      relates_to: `$p${parent}`,
      room_id: ROOM,
      rel_type: relType,
      type: 'm.room.message',
      sender: '@alice:example.org',
      aggregation_key: aggregationKey,
      depth,
      stream_pos: pos--,
      origin_server_ts: 1_700_000_000_000 + pos,
    });
    // Every seventh parent has children, written newest first: the stream order runs against the depth.
    for (let p = 0; p < PARENTS; p += 7) {
      rows.push(child(p, 'm.thread', 30), child(p, 'm.thread', 20), child(p, 'm.replace', 25), child(p, 'm.reference', 20), child(p, 'm.annotation', 21, '👍'));
    }
    await database.db.transaction().execute((trx) => insertRelations(trx, rows));
  });

  after(async () => {
    await database.close();
    await fresh.drop();
  });

  const parents = Array.from({ length: PARENTS }, (_, p) => `$p${p}`);
  const types = ['m.replace', 'm.thread', 'm.reference'];
  const wanted = () =>
    rows
      .filter((r) => types.includes(r.rel_type))
      .sort((a, b) => a.relates_to.localeCompare(b.relates_to) || a.depth - b.depth || a.stream_pos - b.stream_pos);

  /** The rows per parent, in the order returned (the order callers rely on is within a parent). */
  const byParent = (got: RelationRow[]) => [...got].sort((a, b) => a.relates_to.localeCompare(b.relates_to));

  it('returns each parent’s children of the asked types, topologically ordered, past a chunk of parents', async () => {
    const got = await selectChildren(database.db, parents, types);
    assert.equal(got.length, wanted().length);
    assert.deepEqual(byParent(got), wanted());
    assert.ok(got.every((r) => typeof r.depth === 'number' && typeof r.stream_pos === 'number' && typeof r.origin_server_ts === 'number'));
  });

  it('gives the same rows inside a transaction as outside one', async () => {
    const outside = await selectChildren(database.db, parents, types);
    const inside = await database.db.transaction().execute((trx) => selectChildren(trx, parents, types));
    assert.deepEqual(byParent(inside), byParent(outside));
  });

  it('returns nothing for no parents, no types, or parents without children', async () => {
    assert.deepEqual(await selectChildren(database.db, [], types), []);
    assert.deepEqual(await selectChildren(database.db, parents, []), []);
    assert.deepEqual(await selectChildren(database.db, ['$p1', '$p2', '$nothing'], types), []);
  });
});
