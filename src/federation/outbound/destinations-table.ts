import type { DbOrTx } from '../../db/schema.js';
import type { DestinationRow } from '../tables.js';

export async function selectDestinations(db: DbOrTx): Promise<DestinationRow[]> {
  const rows = await db.selectFrom('federation_destinations').selectAll().execute();
  return rows.map((r) => ({ ...r, delivered_pos: Number(r.delivered_pos), edu_pos: Number(r.edu_pos), failing_since: r.failing_since === null ? null : Number(r.failing_since) }));
}

export async function selectDestination(db: DbOrTx, destination: string): Promise<DestinationRow | undefined> {
  const r = await db.selectFrom('federation_destinations').selectAll().where('destination', '=', destination).executeTakeFirst();
  return r && { ...r, delivered_pos: Number(r.delivered_pos), edu_pos: Number(r.edu_pos), failing_since: r.failing_since === null ? null : Number(r.failing_since) };
}

/** Registers a destination whose queue starts after `deliveredPos`; an existing row is left as it is. */
export async function insertDestination(db: DbOrTx, destination: string, deliveredPos: number): Promise<void> {
  await db
    .insertInto('federation_destinations')
    .values({ destination, delivered_pos: deliveredPos, edu_pos: 0, failing_since: null, last_error: null })
    .onConflict((oc) => oc.column('destination').doNothing())
    .execute();
}

export async function updateDestination(db: DbOrTx, destination: string, set: Partial<Omit<DestinationRow, 'destination'>>): Promise<void> {
  await db.updateTable('federation_destinations').set(set).where('destination', '=', destination).execute();
}

export async function selectSenderPosition(db: DbOrTx, stream: string): Promise<number | undefined> {
  const row = await db.selectFrom('federation_sender_positions').select('pos').where('stream', '=', stream).executeTakeFirst();
  return row ? Number(row.pos) : undefined;
}

export async function upsertSenderPosition(db: DbOrTx, stream: string, pos: number): Promise<void> {
  await db
    .insertInto('federation_sender_positions')
    .values({ stream, pos })
    .onConflict((oc) => oc.column('stream').doUpdateSet({ pos }))
    .execute();
}
