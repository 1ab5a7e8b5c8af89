/** The reports table: written once per report, read newest first by server admins. */
import type { DbOrTx } from '../db/schema.js';
import type { ReportRow } from './tables.js';

export async function insertReport(db: DbOrTx, row: ReportRow): Promise<void> {
  await db.insertInto('reports').values(row).execute();
}

/** Reports newest first, `offset` rows in, at most `limit`. */
export async function selectReports(db: DbOrTx, opts: { offset: number; limit: number }): Promise<ReportRow[]> {
  const rows = await db
    .selectFrom('reports')
    .selectAll()
    .orderBy('received_ts', 'desc')
    .orderBy('report_id', 'desc')
    .offset(opts.offset)
    .limit(opts.limit)
    .execute();
  return rows.map((r) => ({ ...r, received_ts: Number(r.received_ts) }));
}
