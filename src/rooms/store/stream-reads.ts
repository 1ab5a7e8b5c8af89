import { prepared, type Prepared } from '../../db/prepared.js';
import type { DbOrTx } from '../../db/schema.js';

/**
 * Reads of the events stream across every room, by stream position: what its consumers read (the
 * search indexer, the federation sender, the user directory) and what another node's bus reads to
 * learn of events it did not write.
 */

/** A types query's parameters: the types as `type0`, `type1`, ..., the position and the limit. */
type TypesParams = Record<string, string | number>;
/** A types query's row: the id and the column that changes after an event is written. */
type TypedRow = { event_id: string; redacted_by: string | null };

/**
 * The types queries, built once per direction and number of types: each consumer asks with the
 * same few types after every burst of events, and building the query costs more than running it.
 */
const typesQueries = new Map<string, Prepared<TypesParams, TypedRow>>();

function typesQuery(down: boolean, count: number): Prepared<TypesParams, TypedRow> {
  const key = `${down ? 'before' : 'after'}:${count}`;
  let query = typesQueries.get(key);
  if (!query) {
    query = prepared((db, p: TypesParams) => {
      const base = db
        .selectFrom('events')
        .select(['event_id', 'redacted_by'])
        .where('type', 'in', Array.from({ length: count }, (_, i) => p[`type${i}`] as string))
        .where('rejected_reason', 'is', null)
        .where('soft_failed', '=', 0)
        .where('outlier', '=', 0);
      const ordered = down ? base.where('stream_pos', '<', p.pos as number).orderBy('stream_pos', 'desc') : base.where('stream_pos', '>', p.pos as number).orderBy('stream_pos', 'asc');
      return ordered.limit(p.limit as number);
    });
    typesQueries.set(key, query);
  }
  return query;
}

/**
 * Servable events of some types across every room, by stream position: after
 * `after` going up, or below `before` going down (backfilled history), for
 * consumers that index the stream (search). Only the ids and the column that changes after an
 * event is written: the events themselves are mostly in the event cache, just sent
 * (EventStore.getManyForRows).
 */
export async function selectStreamEventsOfTypes(
  db: DbOrTx,
  q: { types: string[]; after: number; limit: number } | { types: string[]; before: number; limit: number },
): Promise<TypedRow[]> {
  if (q.types.length === 0) return [];
  const down = 'before' in q;
  const params: TypesParams = { pos: down ? q.before : q.after, limit: q.limit };
  q.types.forEach((t, i) => (params[`type${i}`] = t));
  return (await typesQuery(down, q.types.length).execute(db, params)).rows;
}

const selectEventsAfter = prepared((db, p: { after: number; upTo: number; limit: number }) =>
  db
    .selectFrom('events')
    .select(['event_id', 'room_id', 'stream_pos', 'sender', 'type', 'state_key', 'state_group'])
    .where('stream_pos', '>', p.after)
    .where('stream_pos', '<=', p.upTo)
    .orderBy('stream_pos', 'asc')
    .limit(p.limit),
);

/** Events placed on the stream in (after, upTo], in stream order: what consumers such as the federation sender read. */
export async function selectStreamEventsAfter(
  db: DbOrTx,
  after: number,
  upTo: number,
  limit: number,
): Promise<{ event_id: string; room_id: string; stream_pos: number; sender: string; type: string; state_key: string | null; state_group: number | null }[]> {
  if (upTo <= after) return [];
  const { rows } = await selectEventsAfter.execute(db, { after, upTo, limit });
  return rows.map((r) => ({ ...r, stream_pos: Number(r.stream_pos), state_group: r.state_group === null ? null : Number(r.state_group) }));
}

export interface StreamSummaryRow {
  stream_pos: number;
  room_id: string;
  type: string;
  state_key: string | null;
  redacts: string | null;
}

// Built once: another node's bus runs these after every event it did not write.
const selectSummary = prepared((db, p: { after: number; upTo: number; limit: number }) =>
  db
    .selectFrom('events')
    .select(['stream_pos', 'room_id', 'type', 'state_key', 'redacts'])
    .where('stream_pos', '>', p.after)
    .where('stream_pos', '<=', p.upTo)
    .orderBy('stream_pos')
    .limit(p.limit)
    // A position in range is not null.
    .$narrowType<{ stream_pos: number }>(),
);

/**
 * What another node needs to learn from events in (after, upTo] of the stream:
 * the room, a membership's target and a redaction's target, in stream order.
 */
export async function selectStreamSummary(db: DbOrTx, after: number, upTo: number, limit: number): Promise<StreamSummaryRow[]> {
  return (await selectSummary.execute(db, { after, upTo, limit })).rows;
}

// Each counter's row; the events counter's row once per event after `after` up to that counter
// (at most `limit`), with the event's summary, or once with nulls when there is none.
const selectCountersWithSummary = prepared((db, p: { after: number; limit: number }) =>
  db
    .selectFrom('stream_positions as h')
    .leftJoinLateral(
      (eb) =>
        eb
          .selectFrom('events')
          .select(['stream_pos', 'room_id', 'type', 'state_key', 'redacts'])
          .where('h.stream', '=', 'events')
          .where('stream_pos', '>', p.after)
          .whereRef('stream_pos', '<=', 'h.pos')
          .orderBy('stream_pos')
          .limit(p.limit)
          .as('e'),
      (j) => j.onTrue(),
    )
    .select(['h.stream', 'h.pos', 'e.stream_pos', 'e.room_id', 'e.type', 'e.state_key', 'e.redacts'])
    .orderBy('e.stream_pos'),
);

/**
 * Every counter's value and, read in the same snapshot (one statement), the
 * summary of the events after `after` up to the events counter, at most
 * `limit`: what a node's bus reads to catch up, in one round trip. Since
 * positions are taken last and committed in order, every event up to the
 * counter it reads is in that snapshot. PostgreSQL only (a lateral join):
 * only the cluster bus reads it.
 */
export async function selectCountersWithStreamSummary(db: DbOrTx, after: number, limit: number): Promise<{ counters: Map<string, number>; rows: StreamSummaryRow[] }> {
  const counters = new Map<string, number>();
  const rows: StreamSummaryRow[] = [];
  for (const r of (await selectCountersWithSummary.execute(db, { after, limit })).rows) {
    counters.set(r.stream, Number(r.pos));
    if (r.stream_pos !== null) rows.push({ stream_pos: Number(r.stream_pos), room_id: r.room_id!, type: r.type!, state_key: r.state_key, redacts: r.redacts });
  }
  return { counters, rows };
}
