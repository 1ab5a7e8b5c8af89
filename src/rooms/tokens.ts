import { invalidParam } from '../http/errors.js';

/** Before every event of any room: backfilled history has positions below zero. */
export const START_OF_HISTORY = -Number.MAX_SAFE_INTEGER;

/**
 * A place in a room's topological order (depth, then stream position as the
 * tie-break): the cut just after the event with that key. What /messages and
 * /context tokens carry: `t<depth>_<stream>`.
 */
export interface TopoPoint {
  depth: number;
  stream: number;
}

/** A pagination token: a topological point, or a stream position (`s…` sync tokens, older `t<pos>` tokens). */
export type PaginationToken = { topo: TopoPoint } | { stream: number };

const TOPO = /^t(-?\d{1,16})_(-?\d{1,16})$/;

export function parsePaginationToken(token: string): PaginationToken {
  const m = TOPO.exec(token);
  if (m) return { topo: { depth: Number(m[1]), stream: clamp(Number(m[2])) } };
  return { stream: parseStreamToken(token) };
}

export function topoToken(p: TopoPoint): string {
  return `t${p.depth}_${clamp(p.stream)}`;
}

/**
 * The stream position a token stands for: a sync token's events position,
 * an older `t<pos>` token, or the stream part of a topological one.
 */
export function parseStreamToken(token: string): number {
  const t = TOPO.exec(token);
  if (t) return clamp(Number(t[2]));
  const m = /^[a-z]?(-?\d{1,16})(?:[_~.].*)?$/i.exec(token);
  if (!m) throw invalidParam(`Invalid pagination token: ${token}`);
  return clamp(Number(m[1]));
}

function clamp(pos: number): number {
  return Math.min(Number.MAX_SAFE_INTEGER, Math.max(START_OF_HISTORY, pos));
}
