import type { ClientEvent } from '../core/types.js';
import { invalidParam } from '../http/errors.js';
import type { Viewer } from '../rooms/events/client-format.js';
import { isServable, type StoredEvent } from '../rooms/events/stored-event.js';
import { pointOf } from '../rooms/pagination.js';
import type { RoomsCore } from '../rooms/room-core.js';
import { visibleEvent } from '../rooms/timeline.js';
import { topoToken } from '../rooms/tokens.js';
import { selectChildIds, selectRelationPage, type Point } from './relations-table.js';

export interface RelationsParams {
  relType?: string;
  eventType?: string;
  from?: string;
  to?: string;
  limit?: number;
  dir?: string;
  recurse?: boolean;
}

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
/** Levels of relations followed with `recurse` (the spec asks for at least 3). */
export const RECURSION_DEPTH = 3;

/**
 * GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]] (spec:
 * relations.yaml): the parent's children the viewer may see, in topological
 * order (newest first for `dir=b`, the default), paged by `t<depth>_<stream>`
 * tokens like /messages; with `recurse`, children of children too. A parent
 * the viewer may not see is 404.
 */
export async function readRelations(core: RoomsCore, viewer: Viewer, roomId: string, eventId: string, p: RelationsParams): Promise<Record<string, unknown>> {
  const dir = p.dir === undefined || p.dir === '' ? 'b' : p.dir;
  if (dir !== 'b' && dir !== 'f') throw invalidParam('dir must be b or f');
  if (p.limit !== undefined && p.limit < 1) throw invalidParam('limit must be a positive integer');
  const limit = Math.min(p.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
  await core.requireHead(roomId);
  await visibleEvent(core, viewer, roomId, eventId);

  const parents = [eventId];
  if (p.recurse === true) {
    const seen = new Set(parents);
    let frontier = [eventId];
    for (let level = 1; level < RECURSION_DEPTH && frontier.length > 0; level++) {
      frontier = (await selectChildIds(core.ctx.db, roomId, frontier)).filter((id) => !seen.has(id));
      for (const id of frontier) seen.add(id);
      parents.push(...frontier);
    }
  }

  const from = p.from ? await pointOf(core, roomId, p.from, viewer) : undefined;
  const to = p.to ? await pointOf(core, roomId, p.to, viewer) : undefined;
  const rows = await selectRelationPage(core.ctx.db, {
    roomId,
    parents,
    relType: p.relType,
    type: p.eventType,
    ...(dir === 'b' ? { upTo: from, after: to } : { after: from, upTo: to }),
    order: dir === 'b' ? 'desc' : 'asc',
    limit: limit + 1,
  });
  const page = rows.slice(0, limit);
  const loaded = await core.events.getMany(page.map((r) => r.event_id));
  const stored = page
    .map((r) => loaded.get(r.event_id))
    .filter((ev): ev is StoredEvent => ev !== undefined && ev.roomId === roomId && isServable(ev) && ev.streamPos !== null);
  const vis = await core.visibility.filter(roomId, stored, viewer.userId);
  const chunk: ClientEvent[] = await core.format(vis.visible, viewer, vis.membershipAt);

  const out: Record<string, unknown> = { chunk };
  if (rows.length > limit) {
    const last = page[page.length - 1]!;
    const point: Point = { depth: last.depth, stream: last.stream_pos };
    // The cut just before the last event going back, just after it going forward.
    out.next_batch = topoToken(dir === 'b' ? { depth: point.depth, stream: point.stream - 1 } : point);
  }
  if (p.from) out.prev_batch = p.from;
  if (p.recurse !== undefined) out.recursion_depth = p.recurse ? RECURSION_DEPTH : 1;
  return out;
}
