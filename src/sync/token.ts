import { STREAMS, type StreamPositions } from '../db/stream-positions.js';
import { invalidParam } from '../http/errors.js';

/**
 * A sync token is one position per stream, in the order of STREAMS:
 * `s<events>_<to_device>_<account_data>_<receipts>_<device_lists>_<typing>_<presence>`.
 * Positions point at database state, so a token survives restarts and can
 * be served by any node (CLUSTER.md 4).
 */
export type SyncToken = StreamPositions;

const TOKEN = new RegExp(`^s${STREAMS.map(() => '(\\d{1,15})').join('_')}$`);

export function formatSyncToken(t: SyncToken): string {
  return 's' + STREAMS.map((s) => String(t[s])).join('_');
}

/**
 * formatSyncToken of `heads` with `events` replaced, for many positions: the
 * other streams' part is written once (a sync writes a prev_batch per room).
 */
export function syncTokensWithEvents(heads: SyncToken): (events: number) => string {
  const at = STREAMS.indexOf('events');
  const before = 's' + STREAMS.slice(0, at).map((s) => `${heads[s]}_`).join('');
  const after = STREAMS.slice(at + 1).map((s) => `_${heads[s]}`).join('');
  return (events) => before + String(events) + after;
}

/** Null when the text is not a token this server wrote. */
export function tryParseSyncToken(text: string): SyncToken | null {
  const m = TOKEN.exec(text);
  if (!m) return null;
  const out = {} as SyncToken;
  STREAMS.forEach((s, i) => {
    out[s] = Number(m[i + 1]);
  });
  return out;
}

export function parseSyncToken(text: string): SyncToken {
  const t = tryParseSyncToken(text);
  if (!t) throw invalidParam(`Invalid sync token: ${text.slice(0, 80)}`);
  return t;
}

/**
 * The events position a sync-style token points at (for `/messages` `from`
 * and `to` given a `prev_batch` or `next_batch`); null if it is not one.
 */
export function eventsPositionOf(text: string): number | null {
  return tryParseSyncToken(text)?.events ?? null;
}

/** A token from the future (another database, a reset server) is treated as "now". */
export function clampToken(t: SyncToken, heads: SyncToken): SyncToken {
  const out = { ...t };
  for (const s of STREAMS) if (out[s] > heads[s]) out[s] = heads[s];
  return out;
}
