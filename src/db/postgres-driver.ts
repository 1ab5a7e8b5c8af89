import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import type { Sql, ReservedSql, UnsafeQueryOptions } from 'postgres';

/** Connections of the pool: its configured size and how many are reserved now (for the metrics). */
export interface PoolUsage {
  readonly size: number;
  inUse: number;
}

/**
 * Runs Kysely's compiled SQL on postgres.js. postgres.js is used (not `pg`)
 * because it takes a multi-host URL and finds the new primary after a
 * failover (CLUSTER.md section 7).
 */
class PostgresJsConnection implements DatabaseConnection {
  constructor(private readonly sql: ReservedSql, private readonly usage?: PoolUsage) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.sql.unsafe(query.sql, query.parameters as never[], unsafeOptions(runsSimple(query)));
    const rows = Array.from(result) as R[];
    if (result.command === 'INSERT' || result.command === 'UPDATE' || result.command === 'DELETE') {
      return { rows, numAffectedRows: BigInt(result.count) };
    }
    return { rows };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not used by Hearth');
  }

  release(): void {
    if (this.usage) this.usage.inUse--;
    this.sql.release();
  }
}

/**
 * postgres.js sends a statement without parameters by the simple protocol,
 * which PostgreSQL parses and plans again on every call (the stream heads
 * every /sync reads, say). A query Kysely built is one statement, so it is
 * prepared as the others are; raw SQL, which may hold several statements
 * (migrations), and BEGIN / COMMIT keep the simple protocol.
 */
// postgres.js takes `simple` though its types omit it.
const BY_SIMPLE = { prepare: true, simple: true } as UnsafeQueryOptions;
const PREPARED = { prepare: true, simple: false } as UnsafeQueryOptions;

/** The options of a statement: prepared, or by the simple protocol. */
export function unsafeOptions(simple: boolean): UnsafeQueryOptions {
  return simple ? BY_SIMPLE : PREPARED;
}

export function runsSimple(query: { parameters: readonly unknown[]; query: { kind: string } }): boolean {
  return query.parameters.length === 0 && query.query.kind === 'RawNode';
}

class PostgresJsDriver implements Driver {
  constructor(private readonly sql: Sql, private readonly usage?: PoolUsage) {}
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    const conn = new PostgresJsConnection(await this.sql.reserve(), this.usage);
    if (this.usage) this.usage.inUse++;
    return conn;
  }
  async beginTransaction(conn: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const iso = settings.isolationLevel ? ` isolation level ${settings.isolationLevel}` : '';
    await conn.executeQuery(CompiledQuery.raw(`begin${iso}`));
  }
  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw('commit'));
  }
  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw('rollback'));
  }
  async releaseConnection(conn: DatabaseConnection): Promise<void> {
    (conn as PostgresJsConnection).release();
  }
  async destroy(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}

export class PostgresJsDialect implements Dialect {
  constructor(private readonly sql: Sql, private readonly usage?: PoolUsage) {}
  createAdapter() { return new PostgresAdapter(); }
  createDriver() { return new PostgresJsDriver(this.sql, this.usage); }
  createQueryCompiler() { return new PostgresQueryCompiler(); }
  createIntrospector(db: Kysely<unknown>) { return new PostgresIntrospector(db); }
}
