/**
 * What the two databases hold, table by table, for copying one into the other: the tables and
 * columns on each side, the order PostgreSQL's foreign keys require, and a checksum of a table's
 * rows that both sides compute the same way whatever order the rows come in.
 */
import { createHash } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import type { Sql } from 'postgres';

/** Table name to its columns, in the target's column order. */
export type Catalog = Map<string, string[]>;

export interface SqliteTables {
  /** Ordinary tables and their columns. */
  tables: Catalog;
  /** Virtual tables (full-text indexes) and the shadow tables SQLite keeps for them. */
  virtual: string[];
}

export function sqliteTables(file: BetterSqlite3.Database): SqliteTables {
  const rows = file
    .prepare(`select name, sql from sqlite_master where type = 'table' and name not like 'sqlite\\_%' escape '\\'`)
    .all() as { name: string; sql: string | null }[];
  const virtualNames = rows.filter((r) => /^create\s+virtual\s+table/i.test(r.sql ?? '')).map((r) => r.name);
  const isVirtual = (name: string) => virtualNames.some((v) => name === v || name.startsWith(`${v}_`));
  const tables: Catalog = new Map();
  for (const { name } of rows) {
    if (isVirtual(name)) continue;
    const cols = file.prepare(`select name from pragma_table_info(?) order by cid`).all(name) as { name: string }[];
    tables.set(name, cols.map((c) => c.name));
  }
  return { tables, virtual: rows.map((r) => r.name).filter(isVirtual) };
}

export async function postgresTables(sql: Sql): Promise<Catalog> {
  const rows = await sql<{ table_name: string; column_name: string }[]>`
    select c.table_name, c.column_name
    from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.table_schema = current_schema() and t.table_type = 'BASE TABLE'
    order by c.table_name, c.ordinal_position`;
  const out: Catalog = new Map();
  for (const r of rows) {
    let cols = out.get(r.table_name);
    if (!cols) out.set(r.table_name, (cols = []));
    cols.push(r.column_name);
  }
  return out;
}

/**
 * `tables` ordered so that a table comes after every table its foreign keys point at (Hearth's
 * schema declares none today; the order holds if one is added). Ties keep alphabetical order.
 */
export async function dependencyOrder(sql: Sql, tables: string[]): Promise<string[]> {
  const edges = await sql<{ child: string; parent: string }[]>`
    select c.conrelid::regclass::text as child, c.confrelid::regclass::text as parent
    from pg_constraint c
    join pg_namespace n on n.oid = c.connamespace
    where c.contype = 'f' and n.nspname = current_schema()`;
  const unquote = (s: string) => s.replace(/^"(.*)"$/, '$1');
  const parents = new Map<string, Set<string>>(tables.map((t) => [t, new Set()]));
  for (const e of edges) {
    const child = unquote(e.child);
    const parent = unquote(e.parent);
    if (child !== parent && parents.has(child) && parents.has(parent)) parents.get(child)!.add(parent);
  }
  const order: string[] = [];
  const placed = new Set<string>();
  const pending = [...tables].sort();
  while (pending.length > 0) {
    const i = pending.findIndex((t) => [...parents.get(t)!].every((p) => placed.has(p)));
    // A cycle of foreign keys cannot be filled table by table; the copy would fail on it, so say so.
    if (i < 0) throw new Error(`the foreign keys of ${pending.join(', ')} form a cycle`);
    const [t] = pending.splice(i, 1);
    order.push(t);
    placed.add(t);
  }
  return order;
}

/**
 * A checksum of a multiset of rows: the sum, modulo 2^64, of each row's hash. Adding is
 * commutative, so SQLite and PostgreSQL may return rows in different orders (their text
 * collations differ) and still agree. Values are compared as text: 42 and '42' are one value,
 * as they are once PostgreSQL has stored them in a column of either type.
 */
export class RowChecksum {
  private sum = 0n;
  count = 0;

  add(row: readonly unknown[]): void {
    const text = JSON.stringify(row.map((v) => (v === null || v === undefined ? null : typeof v === 'object' ? bytesOf(v) : String(v))));
    const digest = createHash('sha256').update(text).digest();
    this.sum = (this.sum + digest.readBigUInt64BE(0)) & 0xffff_ffff_ffff_ffffn;
    this.count++;
  }

  get hex(): string {
    return this.sum.toString(16).padStart(16, '0');
  }
}

function bytesOf(v: object): string {
  return Buffer.isBuffer(v) || v instanceof Uint8Array ? `\\x${Buffer.from(v).toString('hex')}` : JSON.stringify(v);
}
