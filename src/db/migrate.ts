import { sql, type Kysely } from 'kysely';
import type { Db, Dialect } from './schema.js';

/**
 * A forward-only schema change. Each domain numbers its own migrations from
 * 1, so domains never collide; (domain, version) is recorded once applied.
 * `up` receives the untyped Kysely instance inside a transaction and must
 * work on both SQLite and PostgreSQL (use the schema builder, or branch on
 * `dialect` for the rare difference).
 */
export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<any>, dialect: Dialect): Promise<void>;
}

export interface DomainMigrations {
  domain: string;
  migrations: Migration[];
}

async function ensureTable(db: Db): Promise<void> {
  await db.schema
    .createTable('schema_migrations')
    .ifNotExists()
    .addColumn('domain', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('applied_ts', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('schema_migrations_pk', ['domain', 'version'])
    .execute();
}

/** Applies every pending migration, each in its own transaction. Returns what ran. */
export async function runMigrations(db: Db, dialect: Dialect, domains: DomainMigrations[]): Promise<string[]> {
  await ensureTable(db);
  const applied = await db.selectFrom('schema_migrations').select(['domain', 'version']).execute();
  const done = new Set(applied.map((r) => `${r.domain}/${r.version}`));
  const ran: string[] = [];
  for (const { domain, migrations } of domains) {
    const sorted = [...migrations].sort((a, b) => a.version - b.version);
    for (const m of sorted) {
      if (done.has(`${domain}/${m.version}`)) continue;
      await db.transaction().execute(async (trx) => {
        if (dialect === 'postgres') {
          // Two nodes starting at once must not both migrate.
          await sql`select pg_advisory_xact_lock(${hashLockKey('migrations')})`.execute(trx);
          const again = await trx
            .selectFrom('schema_migrations')
            .select('version')
            .where('domain', '=', domain)
            .where('version', '=', m.version)
            .executeTakeFirst();
          if (again) return;
        }
        await m.up(trx as unknown as Kysely<any>, dialect);
        await trx
          .insertInto('schema_migrations')
          .values({ domain, version: m.version, name: m.name, applied_ts: Date.now() })
          .execute();
      });
      ran.push(`${domain}/${m.version} ${m.name}`);
    }
  }
  return ran;
}

/** A stable 31-bit key for pg advisory locks. */
export function hashLockKey(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h & 0x7fffffff;
}

/** Migrations of `domains` not yet applied to the database, as `domain/version`. */
export async function pendingMigrations(db: Db, domains: DomainMigrations[]): Promise<string[]> {
  const applied = await db.selectFrom('schema_migrations').select(['domain', 'version']).execute();
  const done = new Set(applied.map((r) => `${r.domain}/${r.version}`));
  return domains.flatMap(({ domain, migrations }) => migrations.map((m) => `${domain}/${m.version}`)).filter((k) => !done.has(k));
}
