import type { Migration } from '../db/migrate.js';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'reports of events, rooms and users',
    async up(db) {
      await db.schema
        .createTable('reports')
        .addColumn('report_id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('reporter', 'text', (c) => c.notNull())
        .addColumn('room_id', 'text')
        .addColumn('event_id', 'text')
        .addColumn('target_user_id', 'text')
        .addColumn('reason', 'text')
        .addColumn('received_ts', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('reports_received').on('reports').columns(['received_ts', 'report_id']).execute();
    },
  },
];
