/**
 * Moves a single-node SQLite database into an empty PostgreSQL database, for `hearth
 * migrate-to-postgres`. In order:
 *
 *   1. the SQLite file gets any pending migration, and must not be in use by a running server
 *      (a node heartbeat younger than NODE_SILENT_AFTER_MS says it is);
 *   2. the PostgreSQL database must hold no data; its tables are then made by the same
 *      migrations a server runs at start, and both sides must have applied the same ones;
 *   3. every table is copied in dependency order, in batches, in one PostgreSQL transaction that
 *      reads from one SQLite snapshot: a failure leaves the target as step 2 made it;
 *   4. every table is read back from PostgreSQL and its row count and row checksum compared with
 *      what was read from SQLite.
 *
 * Hearth keeps every counter (stream positions, state group ids, ...) as a row of
 * `stream_positions`, not in SQL sequences, so copying that table carries sync tokens, positions
 * and ids over unchanged. Not copied: the full-text index (SQLite's FTS5 tables have no
 * PostgreSQL twin; `search_index_state` stays at zero, so the server rebuilds the index from the
 * events), node heartbeats and leases (they describe the old process), and typing notices
 * (ephemeral). Media files are not in the database and stay where `data_dir` has them.
 */
import BetterSqlite3 from 'better-sqlite3';
import postgres, { type Sql, type TransactionSql } from 'postgres';
import { NODE_SILENT_AFTER_MS } from '../cluster/node-registry.js';
import { selectLiveNodes } from '../cluster/nodes-table.js';
import { connectDatabase } from './connect.js';
import { runMigrations, type DomainMigrations } from './migrate.js';
import { dependencyOrder, postgresTables, RowChecksum, sqliteTables, type Catalog } from './table-catalog.js';

/** The copy cannot start: the reason is for the operator, nothing was written. */
export class MigrationRefused extends Error {}

/** Read back differs from what was read: which table and how. */
export class MigrationMismatch extends Error {}

/** Tables left out, and why. */
const NOT_COPIED: Record<string, string> = {
  schema_migrations: 'written by the migrations on PostgreSQL',
  search_index_state: 'the search index is rebuilt from the events',
  event_search: 'the search index is rebuilt from the events',
  cluster_nodes: 'heartbeats of the old process',
  cluster_leases: 'leases of the old process',
  typing_notices: 'typing notices expire within seconds',
};

/** Tables the migrations fill on an empty database; their rows are replaced by the source's. */
const SEEDED = new Set(['stream_positions', 'user_directory_position']);

/** Rows per INSERT: PostgreSQL takes at most 65535 parameters per statement. */
const MAX_PARAMS = 30_000;
const MAX_BATCH_ROWS = 1000;

export interface MigrateOptions {
  /** The SQLite file. */
  sqlitePath: string;
  /** The PostgreSQL database (empty). */
  postgresUrl: string;
  migrations: DomainMigrations[];
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface TableResult {
  table: string;
  rows: number;
  checksum: string;
}

export interface MigrateResult {
  tables: TableResult[];
  skipped: { table: string; reason: string }[];
}

export async function migrateSqliteToPostgres(opts: MigrateOptions): Promise<MigrateResult> {
  const log = opts.log ?? (() => {});
  await prepareSource(opts.sqlitePath, opts.migrations, log);

  const pg = postgres(opts.postgresUrl, {
    max: 2,
    onnotice: () => {},
    types: { bigint: { to: 20, from: [20], serialize: (x: number | bigint) => String(x), parse: (x: string) => Number(x) } },
  } as postgres.Options<Record<string, postgres.PostgresType>>);
  const file = new BetterSqlite3(opts.sqlitePath, { readonly: true, fileMustExist: true });
  try {
    await refuseUnlessEmpty(pg);
    await migrateTarget(opts.postgresUrl, opts.migrations, log);
    await compareMigrations(file, pg);

    const source = sqliteTables(file);
    const target = await postgresTables(pg);
    const skipped = [...new Set([...source.tables.keys(), ...source.virtual])]
      .filter((t) => NOT_COPIED[t] !== undefined || source.virtual.includes(t))
      .sort()
      .map((table) => ({ table, reason: NOT_COPIED[table] ?? 'a SQLite full-text index table' }));
    const copied = [...source.tables.keys()].filter((t) => NOT_COPIED[t] === undefined);
    const columns = matchColumns(copied, source.tables, target);
    const order = await dependencyOrder(pg, copied);

    const expected = await copyTables(file, pg, order, columns, log);
    const tables = await verifyTables(pg, order, columns, expected, log);
    return { tables, skipped };
  } finally {
    file.close();
    await pg.end({ timeout: 5 });
  }
}

/** Brings the SQLite file up to this version's schema, and refuses one a server is using. */
async function prepareSource(path: string, migrations: DomainMigrations[], log: (line: string) => void): Promise<void> {
  const source = await connectDatabase({ url: path });
  try {
    const ran = await runMigrations(source.db, source.dialect, migrations);
    if (ran.length > 0) log(`Applied to the SQLite database first:\n  ${ran.join('\n  ')}`);
    const live = await selectLiveNodes(source.db, source.dialect, NODE_SILENT_AFTER_MS);
    if (live.length > 0) {
      throw new MigrationRefused('a Hearth server is running on the SQLite database (its heartbeat is recent); stop it first');
    }
  } finally {
    await source.close();
  }
}

/** Refuses a PostgreSQL database that holds any row a fresh migration would not have put there. */
async function refuseUnlessEmpty(pg: Sql): Promise<void> {
  const tables = await postgresTables(pg);
  for (const table of tables.keys()) {
    if (table === 'schema_migrations' || table === 'search_index_state') continue;
    const [row] = await pg.unsafe(
      table === 'stream_positions' ? `select 1 from "stream_positions" where pos <> 0 limit 1` : `select 1 from ${quote(table)} limit 1`,
    );
    if (row) throw new MigrationRefused(`the PostgreSQL database is not empty (table ${table} has rows); give an empty database`);
  }
}

async function migrateTarget(url: string, migrations: DomainMigrations[], log: (line: string) => void): Promise<void> {
  const target = await connectDatabase({ url, poolSize: 2 });
  try {
    const ran = await runMigrations(target.db, target.dialect, migrations);
    log(ran.length > 0 ? `Created the PostgreSQL schema (${ran.length} migrations).` : 'The PostgreSQL schema was already in place.');
  } finally {
    await target.close();
  }
}

/** Both databases must be at the same schema version, or their tables would not match. */
async function compareMigrations(file: BetterSqlite3.Database, pg: Sql): Promise<void> {
  const key = (r: { domain: string; version: number | string }) => `${r.domain}/${r.version}`;
  const fromSqlite = new Set((file.prepare('select domain, version from schema_migrations').all() as { domain: string; version: number }[]).map(key));
  const fromPg = new Set((await pg<{ domain: string; version: number }[]>`select domain, version from schema_migrations`).map(key));
  const onlySqlite = [...fromSqlite].filter((k) => !fromPg.has(k));
  if (onlySqlite.length > 0) {
    throw new MigrationRefused(`the SQLite database has migrations this version of Hearth does not know (${onlySqlite.join(', ')}); use the newer version`);
  }
}

/** The columns to copy per table; refuses when a table or column has no place in PostgreSQL. */
function matchColumns(tables: string[], source: Catalog, target: Catalog): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const table of tables) {
    const to = target.get(table);
    if (!to) throw new MigrationRefused(`the SQLite table ${table} has no counterpart in PostgreSQL`);
    const from = source.get(table)!;
    const missing = from.filter((c) => !to.includes(c));
    if (missing.length > 0) throw new MigrationRefused(`columns ${missing.join(', ')} of ${table} have no counterpart in PostgreSQL`);
    out.set(table, to.filter((c) => from.includes(c)));
  }
  return out;
}

/** Copies every table inside one PostgreSQL transaction from one SQLite snapshot; the checksums of what was read. */
async function copyTables(
  file: BetterSqlite3.Database,
  pg: Sql,
  order: string[],
  columns: Map<string, string[]>,
  log: (line: string) => void,
): Promise<Map<string, RowChecksum>> {
  const sums = new Map<string, RowChecksum>();
  // One read transaction: every table is read as of the same moment.
  file.exec('begin');
  try {
    await pg.begin(async (tx) => {
      for (const table of order) {
        const cols = columns.get(table)!;
        const sum = new RowChecksum();
        if (SEEDED.has(table)) await tx.unsafe(`delete from ${quote(table)}`);
        const batchRows = Math.max(1, Math.min(MAX_BATCH_ROWS, Math.floor(MAX_PARAMS / Math.max(1, cols.length))));
        const select = file.prepare(`select ${cols.map(quote).join(', ')} from ${quote(table)}`).raw(true).safeIntegers(true);
        let batch: unknown[][] = [];
        // The iterator holds the SQLite connection; nothing else uses it until the table is done.
        for (const raw of select.iterate() as Iterable<unknown[]>) {
          const row = raw.map(fromSqlite);
          sum.add(row);
          batch.push(row);
          if (batch.length >= batchRows) {
            await insertRows(tx, table, cols, batch);
            batch = [];
          }
        }
        if (batch.length > 0) await insertRows(tx, table, cols, batch);
        sums.set(table, sum);
        if (sum.count > 0) log(`  ${table}: ${sum.count} row${sum.count === 1 ? '' : 's'}`);
      }
    });
  } finally {
    file.exec('rollback');
  }
  return sums;
}

async function insertRows(tx: TransactionSql, table: string, cols: string[], rows: unknown[][]): Promise<void> {
  const params: unknown[] = [];
  const tuples = rows.map((row) => `(${row.map((v) => `$${params.push(v)}`).join(', ')})`);
  await tx.unsafe(`insert into ${quote(table)} (${cols.map(quote).join(', ')}) values ${tuples.join(', ')}`, params as never[]);
}

/** Reads every copied table back from PostgreSQL and compares counts and checksums. */
async function verifyTables(
  pg: Sql,
  order: string[],
  columns: Map<string, string[]>,
  expected: Map<string, RowChecksum>,
  log: (line: string) => void,
): Promise<TableResult[]> {
  const out: TableResult[] = [];
  for (const table of order) {
    const cols = columns.get(table)!;
    const sum = new RowChecksum();
    const rows = pg.unsafe(`select ${cols.map(quote).join(', ')} from ${quote(table)}`).values().cursor(1000);
    for await (const batch of rows as AsyncIterable<unknown[][]>) for (const row of batch) sum.add(row);
    const want = expected.get(table)!;
    if (sum.count !== want.count) throw new MigrationMismatch(`${table}: ${want.count} rows read from SQLite, ${sum.count} in PostgreSQL`);
    if (sum.hex !== want.hex) throw new MigrationMismatch(`${table}: the rows in PostgreSQL differ from SQLite's (checksum ${sum.hex}, expected ${want.hex})`);
    out.push({ table, rows: sum.count, checksum: sum.hex });
  }
  log(`Verified ${out.length} tables: row counts and checksums match.`);
  return out;
}

/** SQLite integers are read as bigint so that none loses precision; those that fit become numbers. */
function fromSqlite(v: unknown): unknown {
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  return v;
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
