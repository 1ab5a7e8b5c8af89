import { sql } from 'kysely';
import { connectDatabase, type Database } from '../../src/db/connect.js';
import { runMigrations } from '../../src/db/migrate.js';
import { ALL_MIGRATIONS } from '../../src/homeserver.js';

/** A migrated PostgreSQL database with a table standing for the progress a lease holder writes. */
export async function openLeaseDb(url: string): Promise<Database> {
  const database = await connectDatabase({ url, poolSize: 3 });
  await runMigrations(database.db, database.dialect, ALL_MIGRATIONS);
  await sql`create table if not exists lease_progress (id serial primary key, holder text not null, epoch bigint not null, n integer not null)`.execute(database.db);
  return database;
}
