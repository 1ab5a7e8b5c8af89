import { redactClientEvent, type ClientEvent as RedactableEvent } from '../core/redaction.js';
import type { ClientEvent } from '../core/types.js';
import { invalidParam } from '../http/errors.js';
import type { Viewer } from '../rooms/events/client-format.js';
import { isServable, type StoredEvent } from '../rooms/events/stored-event.js';
import type { RoomsCore } from '../rooms/room-core.js';
import { assertCanReadHistory } from '../rooms/timeline.js';
import { selectRootsRepliedBy, selectThreadRoots } from './relations-table.js';

export interface ThreadsParams {
  include?: string;
  limit?: number;
  from?: string;
}

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
/** Rounds of roots read when the viewer may see none of a round (bounds the work of one request). */
const MAX_ROUNDS = 5;

/**
 * GET /rooms/{roomId}/threads (spec: threads_list.yaml): the thread roots the
 * viewer may see, ordered by their latest reply, newest first, each with its
 * bundled aggregations; `include=participated` keeps the threads the viewer
 * started or replied in. A root sent by a user the viewer ignores is served
 * redacted (as a client aggregating locally would show it). The `next_batch` token is the stream position of the
 * last root's latest reply: the next page holds threads whose latest reply is
 * older.
 */
export async function readThreads(
  core: RoomsCore,
  ignoredUsers: (userId: string) => Promise<Set<string>>,
  viewer: Viewer,
  roomId: string,
  p: ThreadsParams,
): Promise<Record<string, unknown>> {
  const include = p.include ?? 'all';
  if (include !== 'all' && include !== 'participated') throw invalidParam('include must be all or participated');
  if (p.limit !== undefined && p.limit < 1) throw invalidParam('limit must be a positive integer');
  const limit = Math.min(p.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
  let before: number | null = null;
  if (p.from !== undefined && p.from !== '') {
    if (!/^\d{1,16}$/.test(p.from)) throw invalidParam('Unknown pagination token');
    before = Number(p.from);
  }
  await assertCanReadHistory(core, viewer.userId, roomId);

  const roots: StoredEvent[] = [];
  let next: number | null = null;
  for (let round = 0; round < MAX_ROUNDS && roots.length < limit; round++) {
    const rows = await selectThreadRoots(core.ctx.db, roomId, before, limit - roots.length + 1);
    const page = rows.slice(0, limit - roots.length);
    const more = rows.length > page.length;
    const loaded = await core.events.getMany(page.map((r) => r.root));
    let candidates = page
      .map((r) => loaded.get(r.root))
      .filter((ev): ev is StoredEvent => ev !== undefined && ev.roomId === roomId && isServable(ev) && ev.streamPos !== null);
    if (include === 'participated') {
      const replied = await selectRootsRepliedBy(core.ctx.db, roomId, candidates.map((ev) => ev.eventId), viewer.userId);
      candidates = candidates.filter((ev) => ev.pdu.sender === viewer.userId || replied.has(ev.eventId));
    }
    const vis = await core.visibility.filter(roomId, candidates, viewer.userId);
    roots.push(...vis.visible);
    if (page.length > 0) before = page[page.length - 1]!.latest;
    next = more ? before : null;
    if (!more) break;
  }
  const [formatted, ignored, version] = await Promise.all([core.format(roots, viewer), ignoredUsers(viewer.userId), core.versionOf(roomId)]);
  const chunk: ClientEvent[] = formatted.map((ev) =>
    ignored.has(ev.sender) && version ? { ...(redactClientEvent(ev as RedactableEvent, version) as ClientEvent), unsigned: ev.unsigned } : ev,
  );
  const out: Record<string, unknown> = { chunk };
  if (next !== null) out.next_batch = String(next);
  return out;
}
