import type BetterSqlite3 from 'better-sqlite3';
import type { Prepared } from './prepared.js';
import type { Db, DbOrTx } from './schema.js';

/**
 * Synchronous SQLite transactions for hot paths. better-sqlite3 runs every
 * statement synchronously anyway; going through Kysely adds a promise chain
 * per statement and a Transaction object per transaction, which on a send
 * costs more than SQLite's own work. A synchronous transaction holds Kysely's
 * single connection (so nothing else runs on it meanwhile: the SQLite pitfall
 * in the brief cannot happen) and runs begin, the statements and commit
 * without yielding to the event loop.
 *
 * Only for code that needs no `await` between its statements; everything
 * else uses `db.transaction()`. On PostgreSQL there is no such path:
 * `sqliteSync(db)` is undefined and callers use Kysely.
 */
export interface SyncTx {
  /** Rows of a prepared query (SELECT, or a write with RETURNING). */
  all<P extends object, R>(query: Prepared<P, R>, params: P): R[];
  /** Runs a prepared write; returns the number of rows changed. */
  run<P extends object>(query: Prepared<P, unknown>, params: P): number;
  /**
   * Rows of a SELECT as arrays of values in the order of its columns: for
   * reads of many rows, where better-sqlite3's making of an object per row
   * (a property defined at a time) costs more than the caller's own object
   * literal made from the array.
   */
  rawRows(sqlText: string, parameters: readonly unknown[]): unknown[][];
}

interface RawSqlite {
  file: BetterSqlite3.Database;
  /** connect.ts's statement cache (shared with Kysely's queries). */
  prepare(sql: string): BetterSqlite3.Statement;
  /** HEARTH_LOG_SQL's printer, as Kysely's queries have it. */
  log?: (sql: string, ms: number) => void;
}

const raws = new WeakMap<object, RawSqlite>();

/** Called by connect.ts for a SQLite database: the handle behind `db`. */
export function registerSqliteHandle(db: Db, raw: RawSqlite): void {
  raws.set(db.getExecutor().adapter, raw);
}

/** Watchers of rawRows statements, per database adapter (see watchRawReads). */
const rawWatchers = new WeakMap<object, Set<(sqlText: string) => void>>();

/**
 * Calls `fn` with the text of each rawRows statement run on `db` until the
 * returned function is called: those reads bypass Kysely, and so its plugins,
 * which is how the rest of the statements can be watched (tests count
 * statements this way). Does nothing on PostgreSQL.
 */
export function watchRawReads(db: Db, fn: (sqlText: string) => void): () => void {
  const adapter = db.getExecutor().adapter;
  let set = rawWatchers.get(adapter);
  if (!set) rawWatchers.set(adapter, (set = new Set()));
  set.add(fn);
  return () => void set.delete(fn);
}

/** `?, ?, ...`: the placeholders of an `in` list of `n` values, for rawRows statement texts. */
export function placeholders(n: number): string {
  return new Array<string>(n).fill('?').join(', ');
}

export interface SqliteSync {
  /** Runs `fn` in one transaction (BEGIN IMMEDIATE ... COMMIT; ROLLBACK if it throws); resolves after commit. */
  transaction<T>(fn: (tx: SyncTx) => T): Promise<T>;
  /**
   * As transaction, but shares one transaction, and so one commit and its
   * fsync, with the other `grouped` calls made on this SqliteSync until the
   * event loop next checks for immediates: writes that arrive together (sends
   * into different rooms, whose room queues run side by side) pay for one
   * commit between them. Each `fn` runs under a savepoint: one that throws
   * is rolled back alone and its caller gets the error; the others commit.
   * Every caller's promise settles after the COMMIT (or its failure, which
   * fails them all).
   */
  grouped<T>(fn: (tx: SyncTx) => T): Promise<T>;
  /**
   * Runs reads in `fn` outside a transaction, holding the connection. Only on
   * the root database: called while a Kysely transaction holds the
   * connection, it would wait for itself.
   */
  read<T>(fn: (tx: SyncTx) => T): Promise<T>;
}

/** A write waiting for its group's transaction (SqliteSync.grouped). */
interface Grouped {
  fn: (tx: SyncTx) => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Whether `db` (or a transaction of it) is a SQLite database. */
export function isSqlite(db: DbOrTx): boolean {
  return raws.has(db.getExecutor().adapter);
}

/** The synchronous path for `db` when it is SQLite, else undefined. */
export function sqliteSync(db: Db): SqliteSync | undefined {
  const raw = raws.get(db.getExecutor().adapter);
  if (!raw) return undefined;
  const log = raw.log;
  const adapter = db.getExecutor().adapter;
  const exec = (sql: string, parameters: readonly unknown[], reader: boolean): unknown => {
    const stmt = raw.prepare(sql);
    if (!log) return reader ? stmt.all(parameters as unknown[]) : stmt.run(parameters as unknown[]).changes;
    const t0 = performance.now();
    const out = reader ? stmt.all(parameters as unknown[]) : stmt.run(parameters as unknown[]).changes;
    log(sql, performance.now() - t0);
    return out;
  };
  const tx: SyncTx = {
    all<P extends object, R>(query: Prepared<P, R>, params: P): R[] {
      const q = query.bind(db as DbOrTx, params);
      return exec(q.sql, q.parameters, true) as R[];
    },
    run<P extends object>(query: Prepared<P, unknown>, params: P): number {
      const q = query.bind(db as DbOrTx, params);
      return exec(q.sql, q.parameters, false) as number;
    },
    rawRows(sqlText: string, parameters: readonly unknown[]): unknown[][] {
      // The statement is shared with Kysely's queries through the cache: raw mode only for this call.
      const stmt = raw.prepare(sqlText);
      const watchers = rawWatchers.get(adapter);
      if (watchers) for (const fn of watchers) fn(sqlText);
      const t0 = log ? performance.now() : 0;
      stmt.raw(true);
      try {
        return stmt.all(parameters as unknown[]) as unknown[][];
      } finally {
        stmt.raw(false);
        log?.(sqlText, performance.now() - t0);
      }
    },
  };
  /**
   * One transaction for the writes of `group`, holding Kysely's connection (no other query can be
   * between its statements, or inside ours). Several writes each run under a savepoint, so that
   * one that throws is rolled back alone; each settles after the COMMIT.
   */
  const writeGroup = (group: Grouped[]): Promise<void> =>
    db.getExecutor().provideConnection(async () => {
      const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = [];
      try {
        exec('begin immediate', [], false);
        if (group.length === 1) outcomes.push({ ok: true, value: group[0]!.fn(tx) });
        else {
          for (const g of group) {
            exec('savepoint grouped_write', [], false);
            try {
              outcomes.push({ ok: true, value: g.fn(tx) });
            } catch (err) {
              exec('rollback to grouped_write', [], false);
              outcomes.push({ ok: false, err });
            }
            exec('release grouped_write', [], false);
          }
        }
        exec('commit', [], false);
      } catch (e) {
        if (raw.file.inTransaction) exec('rollback', [], false);
        for (const g of group) g.reject(e);
        return;
      }
      group.forEach((g, i) => {
        const o = outcomes[i]!;
        if (o.ok) g.resolve(o.value);
        else g.reject(o.err);
      });
    });
  /** Runs `group` through writeGroup; a failure to get the connection fails each of its writes. */
  const settle = (group: Grouped[]): void => {
    writeGroup(group).catch((err) => {
      for (const g of group) g.reject(err);
    });
  };
  let waiting: Grouped[] = [];
  return {
    grouped<T>(fn: (tx: SyncTx) => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        waiting.push({ fn, resolve: resolve as (v: unknown) => void, reject });
        // After the poll phase: the requests read in it reach their writes first.
        if (waiting.length > 1) return;
        setImmediate(() => {
          const group = waiting;
          waiting = [];
          settle(group);
        });
      });
    },
    transaction<T>(fn: (tx: SyncTx) => T): Promise<T> {
      return new Promise<T>((resolve, reject) => settle([{ fn, resolve: resolve as (v: unknown) => void, reject }]));
    },
    read<T>(fn: (tx: SyncTx) => T): Promise<T> {
      return db.getExecutor().provideConnection(async () => fn(tx));
    },
  };
}
