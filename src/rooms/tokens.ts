import { invalidParam } from '../http/errors.js';

/**
 * Pagination tokens are stream positions: `t<pos>` means "between the event
 * at <pos> and the next one". Sync tokens (`s<events>_<...>`) are accepted
 * too: their first number is the events stream position.
 */
export function parseStreamToken(token: string): number {
  const m = /^[a-z]?(\d{1,16})(?:[_~.-].*)?$/i.exec(token);
  if (!m) throw invalidParam(`Invalid pagination token: ${token}`);
  return Number(m[1]);
}

export function streamToken(pos: number): string {
  return `t${Math.max(0, pos)}`;
}
