import type { Sql } from 'postgres';
import { runsSimple, unsafeOptions, type PoolUsage } from './postgres-driver.js';
import type { Prepared } from './prepared.js';
import type { Db, DbOrTx } from './schema.js';

/** Anything statements can be written to without reading their answer (SyncTx, PipelinedTx). */
export interface StatementSink {
  run<P extends object>(query: Prepared<P, unknown>, params: P): unknown;
}

export interface PipelinedTx extends StatementSink {
  /** Sends the query now; its rows when the answer arrives. */
  all<P extends object, R>(query: Prepared<P, R>, params: P): Promise<R[]>;
  /** Sends the write now; the number of rows it changed when the answer arrives. */
  run<P extends object>(query: Prepared<P, unknown>, params: P): Promise<number>;
}

export interface PgPipeline {
  /**
   * One transaction whose statements go out without waiting for each other's
   * answers: postgres.js pipelines them on one connection, so a group of
   * statements costs one round trip. `fn` awaits only the answers it needs
   * before sending more. COMMIT follows the last statement in the same
   * flight; if any statement failed, PostgreSQL turns that COMMIT into a
   * rollback and the statement's error is thrown.
   */
  transaction<T>(fn: (tx: PipelinedTx) => Promise<T>): Promise<T>;
}

const handles = new WeakMap<object, { sql: Sql; usage?: PoolUsage }>();

/** Called by connect.ts for a PostgreSQL database: the postgres.js client behind `db`. */
export function registerPostgresHandle(db: Db, sql: Sql, usage?: PoolUsage): void {
  handles.set(db.getExecutor().adapter, { sql, usage });
}

/**
 * The pipelined path for `db` when it is PostgreSQL, else undefined. Kysely
 * runs a transaction's statements one after another (each a round trip);
 * this is for hot paths whose statements mostly do not depend on each other.
 */
export function pgPipeline(db: Db): PgPipeline | undefined {
  const handle = handles.get(db.getExecutor().adapter);
  if (!handle) return undefined;
  const { sql, usage } = handle;
  return {
    async transaction<T>(fn: (tx: PipelinedTx) => Promise<T>): Promise<T> {
      const conn = await sql.reserve();
      if (usage) usage.inUse++;
      const inFlight: Promise<unknown>[] = [];
      const send = (text: string, parameters: readonly unknown[], simple = parameters.length === 0) => {
        const q = conn.unsafe(text, parameters as never[], unsafeOptions(simple)).execute();
        // Awaited together at commit; a failure must not also surface as an unhandled rejection.
        q.catch(() => {});
        inFlight.push(q);
        return q;
      };
      const tx: PipelinedTx = {
        all<P extends object, R>(query: Prepared<P, R>, params: P): Promise<R[]> {
          const c = query.bind(db as DbOrTx, params);
          return send(c.sql, c.parameters, runsSimple(c)).then((rows) => Array.from(rows as Iterable<R>));
        },
        run<P extends object>(query: Prepared<P, unknown>, params: P): Promise<number> {
          const c = query.bind(db as DbOrTx, params);
          const count = send(c.sql, c.parameters, runsSimple(c)).then((rows) => (rows as unknown as { count: number }).count);
          // Writers through StatementSink do not await this; its failure (a connection lost with the
          // primary) reaches the transaction at COMMIT, and must not also end the process as an
          // unhandled rejection.
          count.catch(() => {});
          return count;
        },
      };
      let committing = false;
      try {
        send('begin', []);
        const out = await fn(tx);
        committing = true;
        send('commit', []);
        await Promise.all(inFlight);
        return out;
      } catch (e) {
        // Every answer is in before the connection goes back to the pool. Before COMMIT went out
        // the transaction is still open; after, PostgreSQL has rolled it back.
        await Promise.allSettled(inFlight);
        if (!committing) await conn.unsafe('rollback').catch(() => {});
        throw e;
      } finally {
        if (usage) usage.inUse--;
        conn.release();
      }
    },
  };
}
