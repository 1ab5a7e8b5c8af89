import { sql } from 'kysely';
import type { Migration } from '../db/migrate.js';
import { indexExistingStateEvents } from './state/auth-chain-backfill.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'rooms, events, state groups, current state, memberships, forward extremities',
    async up(db) {
      await db.schema
        .createTable('rooms')
        .addColumn('room_id', 'text', (c) => c.primaryKey())
        .addColumn('room_version', 'text', (c) => c.notNull())
        .addColumn('creator', 'text', (c) => c.notNull())
        .addColumn('created_ts', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('events')
        .addColumn('event_id', 'text', (c) => c.primaryKey())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint')
        .addColumn('depth', 'bigint', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state_key', 'text')
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('origin_server_ts', 'bigint', (c) => c.notNull())
        .addColumn('json', 'text', (c) => c.notNull())
        .addColumn('state_group', 'bigint')
        .addColumn('replaces_state', 'text')
        .addColumn('membership', 'text')
        .addColumn('redacts', 'text')
        .addColumn('redacted_by', 'text')
        .addColumn('outlier', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('rejected_reason', 'text')
        .addColumn('soft_failed', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('sender_device', 'text')
        .addColumn('txn_id', 'text')
        .execute();
      // Null positions (outliers) are distinct in a unique index on both backends.
      await db.schema.createIndex('events_stream_pos_uq').unique().on('events').column('stream_pos').execute();
      await db.schema.createIndex('events_room_pos_idx').on('events').columns(['room_id', 'stream_pos']).execute();
      // Membership and history-visibility histories: (type, state_key) first, then room.
      await db.schema.createIndex('events_state_idx').on('events').columns(['type', 'state_key', 'room_id', 'stream_pos']).execute();
      await db.schema.createIndex('events_redacts_idx').on('events').column('redacts').execute();
      // Send idempotency: one event per (room, user, device, transaction id).
      await db.schema
        .createIndex('events_txn_uq')
        .unique()
        .on('events')
        .columns(['room_id', 'sender', 'sender_device', 'txn_id'])
        .execute();

      await db.schema
        .createTable('state_groups')
        .addColumn('id', 'bigint', (c) => c.primaryKey())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('prev_group', 'bigint')
        .addColumn('delta_depth', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('state_group_deltas')
        .addColumn('state_group', 'bigint', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state_key', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('state_group_deltas_pk', ['state_group', 'type', 'state_key'])
        .execute();

      await db.schema
        .createTable('current_state')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state_key', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('current_state_pk', ['room_id', 'type', 'state_key'])
        .execute();

      await db.schema
        .createTable('room_memberships')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('membership', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text')
        .addColumn('avatar_url', 'text')
        .addColumn('forgotten', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('room_memberships_pk', ['room_id', 'user_id'])
        .execute();
      await db.schema.createIndex('room_memberships_user_idx').on('room_memberships').columns(['user_id', 'membership']).execute();
      await db.schema.createIndex('room_memberships_room_idx').on('room_memberships').columns(['room_id', 'membership']).execute();

      await db.schema
        .createTable('forward_extremities')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('forward_extremities_pk', ['room_id', 'event_id'])
        .execute();
    },
  },
  {
    version: 2,
    name: 'fewer index pages written per message',
    // Every index a message row enters is one more page written at commit: the state and redaction
    // indexes only serve rows that have the column, and the extremity list is looked up by its key.
    async up(db, dialect) {
      await db.schema.dropIndex('events_state_idx').execute();
      await db.schema
        .createIndex('events_state_idx')
        .on('events')
        .columns(['type', 'state_key', 'room_id', 'stream_pos'])
        .where(sql.ref('state_key'), 'is not', null)
        .execute();
      await db.schema.dropIndex('events_redacts_idx').execute();
      await db.schema.createIndex('events_redacts_idx').on('events').column('redacts').where(sql.ref('redacts'), 'is not', null).execute();
      if (dialect === 'sqlite') {
        await db.schema
          .createTable('forward_extremities_new')
          .addColumn('room_id', 'text', (c) => c.notNull())
          .addColumn('event_id', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('forward_extremities_pk', ['room_id', 'event_id'])
          .modifyEnd(sql`without rowid`)
          .execute();
        await sql`insert into forward_extremities_new (room_id, event_id) select room_id, event_id from forward_extremities`.execute(db);
        await db.schema.dropTable('forward_extremities').execute();
        await db.schema.alterTable('forward_extremities_new').renameTo('forward_extremities').execute();
      }
    },
  },
  {
    version: 3,
    name: 'the event graph: prev-event edges, backward extremities, state before each event, own state group ids',
    async up(db, dialect) {
      const withoutRowid = dialect === 'sqlite' ? sql`without rowid` : sql``;
      // prev_events of every stored event, keyed for the lookup the graph needs: the children of an
      // event (an event's own prev events are in its JSON). One index, so one page per send.
      await db.schema
        .createTable('event_edges')
        .addColumn('prev_event_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('event_edges_pk', ['prev_event_id', 'event_id'])
        .modifyEnd(withoutRowid)
        .execute();
      // Prev events referenced by stored events but not stored: where backfill starts.
      await db.schema
        .createTable('backward_extremities')
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('backward_extremities_pk', ['room_id', 'event_id'])
        .modifyEnd(withoutRowid)
        .execute();
      // Every change to a room's current state, at the stream position where it happened: what
      // membership lists and /sync follow, so a change made by state resolution shows too.
      await db.schema
        .createTable('current_state_deltas')
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state_key', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('membership', 'text')
        .addPrimaryKeyConstraint('current_state_deltas_pk', ['stream_pos', 'room_id', 'type', 'state_key'])
        .execute();
      await db.schema.createIndex('current_state_deltas_key_idx').on('current_state_deltas').columns(['state_key', 'type', 'stream_pos']).execute();
      await sql`
        insert into current_state_deltas (stream_pos, room_id, type, state_key, event_id, membership)
        select stream_pos, room_id, type, state_key, event_id, membership from events
        where state_key is not null and stream_pos is not null and rejected_reason is null and soft_failed = 0
      `.execute(db);
      await db.schema.alterTable('events').addColumn('state_group_before', 'bigint').execute();
      // Transaction ids are scoped per device and per endpoint: /send and /redact may reuse one.
      await db.schema.alterTable('events').addColumn('txn_endpoint', 'text').execute();
      await sql`update events set txn_endpoint = case when type = 'm.room.redaction' then 'redact' else 'send' end where txn_id is not null`.execute(db);
      await db.schema.dropIndex('events_txn_uq').execute();
      await db.schema
        .createIndex('events_txn_uq')
        .unique()
        .on('events')
        .columns(['room_id', 'sender', 'sender_device', 'txn_id', 'txn_endpoint'])
        .execute();
      // Existing events: a non-state event's state is the same before and after it; for a
      // state event the group after it was written as a delta on the group before it.
      await sql`update events set state_group_before = state_group where state_key is null`.execute(db);
      await sql`
        update events set state_group_before = (select g.prev_group from state_groups g where g.id = events.state_group)
        where state_key is not null and state_group is not null
      `.execute(db);
      // Edges of existing events, from their JSON (v1-v2 rooms hold [id, hashes] pairs).
      const rows = await db.selectFrom('events').select(['event_id', 'json']).execute();
      const edges: { event_id: string; prev_event_id: string }[] = [];
      for (const r of rows) {
        const prev = (JSON.parse(r.json) as { prev_events?: unknown[] }).prev_events ?? [];
        for (const p of new Set(prev.map((x) => (Array.isArray(x) ? x[0] : x)))) {
          if (typeof p === 'string') edges.push({ event_id: r.event_id, prev_event_id: p });
        }
      }
      for (let i = 0; i < edges.length; i += 400) await db.insertInto('event_edges').values(edges.slice(i, i + 400)).execute();
      // State group ids get their own counter, starting past the ids already used.
      const max = await db.selectFrom('state_groups').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst();
      await db.insertInto('stream_positions').values({ stream: 'state_groups', pos: Number(max?.m ?? 0) }).execute();
      // Backfilled events take positions below every existing one, counting down from 0.
      await db.insertInto('stream_positions').values({ stream: 'backfill', pos: 0 }).execute();
    },
  },
  {
    version: 4,
    name: 'topological order: (room, depth, stream position) for /messages and /context',
    async up(db) {
      await db.schema.createIndex('events_room_topo_idx').on('events').columns(['room_id', 'depth', 'stream_pos']).execute();
    },
  },
  {
    version: 5,
    name: 'auth chain cover index: a (chain, seq) for every state event and links between chains',
    async up(db, dialect) {
      const withoutRowid = dialect === 'sqlite' ? sql`without rowid` : sql``;
      await db.schema
        .createTable('auth_chain_positions')
        .addColumn('event_id', 'text', (c) => c.primaryKey())
        .addColumn('chain_id', 'bigint', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('auth_chain_positions_chain_uq').unique().on('auth_chain_positions').columns(['chain_id', 'seq']).execute();
      await db.schema
        .createTable('auth_chain_links')
        .addColumn('origin_chain', 'bigint', (c) => c.notNull())
        .addColumn('origin_seq', 'bigint', (c) => c.notNull())
        .addColumn('target_chain', 'bigint', (c) => c.notNull())
        .addColumn('target_seq', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('auth_chain_links_pk', ['origin_chain', 'origin_seq', 'target_chain'])
        .modifyEnd(withoutRowid)
        .execute();
      const chains = await indexExistingStateEvents(db);
      await db.insertInto('stream_positions').values({ stream: 'auth_chains', pos: chains }).execute();
    },
  },
  {
    version: 6,
    name: 'events by (room, origin_server_ts), for timestamp_to_event',
    async up(db) {
      await db.schema.createIndex('events_room_ts_idx').on('events').columns(['room_id', 'origin_server_ts']).execute();
    },
  },
  {
    version: 7,
    name: "events by (room, stream position) carry what /sync's timeline read needs, so it reads no table rows",
    async up(db) {
      // selectLatestEvents reads the newest events of every room of a sync: with the servable
      // checks and the columns it returns in the index, it no longer visits each event's row
      // (most of which is its JSON). The index replaces the narrower one it starts with.
      await db.schema.dropIndex('events_room_pos_idx').execute();
      await db.schema
        .createIndex('events_room_pos_idx')
        .on('events')
        .columns(['room_id', 'stream_pos', 'rejected_reason', 'soft_failed', 'event_id', 'redacted_by'])
        .execute();
    },
  },
  {
    version: 8,
    name: 'partial-state joins: rooms whose state lacks members, and the events stored meanwhile',
    async up(db) {
      await db.schema
        .createTable('partial_state_rooms')
        .addColumn('room_id', 'text', (c) => c.primaryKey())
        .addColumn('join_event_id', 'text', (c) => c.notNull())
        .addColumn('servers', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('partial_state_events')
        .addColumn('event_id', 'text', (c) => c.primaryKey())
        .addColumn('room_id', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('partial_state_events_room_idx').on('partial_state_events').column('room_id').execute();
    },
  },
  {
    version: 9,
    name: 'partial-state joins: where on the events stream each room\'s state was filled in',
    async up(db) {
      await db.schema
        .createTable('partial_state_fills')
        .addColumn('room_id', 'text', (c) => c.primaryKey())
        .addColumn('stream_pos', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('partial_state_fills_pos_idx').on('partial_state_fills').column('stream_pos').execute();
    },
  },
  {
    version: 10,
    name: 'timestamp_to_event reads the (room, stream position) index; no index by timestamp',
    // An index by (room, origin_server_ts) was one more page written by every message, for a search
    // that people make now and then (jump to a date). The timestamp joins the covering index that
    // /sync's timeline reads instead, so the search scans the room's entries there and never its rows.
    async up(db) {
      await db.schema.dropIndex('events_room_ts_idx').execute();
      await db.schema.dropIndex('events_room_pos_idx').execute();
      await db.schema
        .createIndex('events_room_pos_idx')
        .on('events')
        .columns(['room_id', 'stream_pos', 'rejected_reason', 'soft_failed', 'event_id', 'redacted_by', 'origin_server_ts'])
        .execute();
    },
  },  {
    version: 11,
    name: "an event's first child in its own row, written by the SQLite send path instead of an edge",
    // An edge row is keyed by the prev event's id, a hash: every message wrote a page at a random
    // place in event_edges. The prev event of a message made here is the room's newest event, whose
    // row is on the page the new row goes to, so recording the child there costs no page.
    async up(db) {
      await db.schema.alterTable('events').addColumn('first_child', 'text').execute();
    },
  },

];
