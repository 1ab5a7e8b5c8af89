import { invalidParam } from '../http/errors.js';

/** Before every event of any room: backfilled history has positions below zero. */
export const START_OF_HISTORY = -Number.MAX_SAFE_INTEGER;

/**
 * Pagination tokens are stream positions: `t<pos>` means "between the event
 * at <pos> and the next one"; history filled in by backfill sits below zero
 * (`t-12`). Sync tokens (`s<events>_<...>`) are accepted too: their first
 * number is the events stream position.
 */
export function parseStreamToken(token: string): number {
  const m = /^[a-z]?(-?\d{1,16})(?:[_~.].*)?$/i.exec(token);
  if (!m) throw invalidParam(`Invalid pagination token: ${token}`);
  return Math.max(START_OF_HISTORY, Number(m[1]));
}

export function streamToken(pos: number): string {
  return `t${Math.max(START_OF_HISTORY, pos)}`;
}
