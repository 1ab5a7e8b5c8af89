import type { ClientEvent, JsonObject } from '../core/types.js';
import type { Db } from '../db/schema.js';
import type { Viewer } from '../rooms/events/client-format.js';
import { isServable, type EventView, type StoredEvent } from '../rooms/events/stored-event.js';
import type { Bundler, RoomsCore } from '../rooms/room-core.js';
import { relationOf } from './relation-of.js';
import { selectChildren, type RelationRow } from './relations-table.js';

/** The relation types the server aggregates (`m.annotation` is not: spec modules/event_annotations). */
const AGGREGATED = ['m.replace', 'm.thread', 'm.reference'];
/** Inside a bundle (a thread's latest event), threads are not summarised again. */
const NESTED = ['m.replace', 'm.reference'];

/**
 * Bundled aggregations, from the relation index and the children the viewer
 * may see (history visibility; not redacted; not sent by a user the viewer
 * ignores):
 * - `m.replace`: the most recent valid replacement (spec
 *   modules/event_replacements: same sender, same type, neither a state
 *   event, the original not itself an edit, `m.new_content` present; most
 *   recent by `origin_server_ts`, then the larger event id), formatted as
 *   normal; none for a redacted original.
 * - `m.thread`: `count`, the topologically latest reply formatted with its
 *   own aggregations, and `current_user_participated` (modules/threading).
 * - `m.reference`: a `chunk` of `{event_id}` (modules/reference_relations).
 */
export class Aggregator implements Bundler {
  constructor(
    private readonly db: Db,
    private readonly core: RoomsCore,
    private readonly ignoredUsers: (userId: string) => Promise<Set<string>>,
  ) {}

  async bundle(events: EventView[], viewer: Viewer, depth: number): Promise<Map<string, JsonObject>> {
    const out = new Map<string, JsonObject>();
    if (depth > 1) return out;
    const byRoom = new Map<string, EventView[]>();
    for (const ev of events) {
      let l = byRoom.get(ev.roomId);
      if (!l) byRoom.set(ev.roomId, (l = []));
      l.push(ev);
    }
    // One query for every parent (a /sync of many rooms asks once); children count only in their parent's room.
    const all = await selectChildren(this.db, [...new Set(events.map((p) => p.eventId))], depth === 0 ? AGGREGATED : NESTED);
    if (all.length === 0) return out;
    // Rooms are independent: their visibility checks and formatting run side by side.
    await Promise.all(
      [...byRoom].map(async ([roomId, parents]) => {
        const rows = all.filter((r) => r.room_id === roomId);
        if (rows.length === 0) return;
        const children = await this.visibleChildren(roomId, rows, viewer);
        if (children.size === 0) return;
        await this.aggregateRoom(parents, rows, children, viewer, depth, out);
      }),
    );
    return out;
  }

  /** The children of `rows` the viewer may see, by id. */
  private async visibleChildren(roomId: string, rows: RelationRow[], viewer: Viewer): Promise<Map<string, StoredEvent>> {
    const [loaded, ignored] = await Promise.all([this.core.events.getMany(rows.map((r) => r.event_id)), this.ignoredUsers(viewer.userId)]);
    const candidates = [...loaded.values()].filter(
      (ev) => ev.roomId === roomId && isServable(ev) && ev.streamPos !== null && ev.redactedBy === null && !ignored.has(ev.pdu.sender),
    );
    const vis = await this.core.visibility.filter(roomId, candidates, viewer.userId);
    return new Map(vis.visible.map((ev) => [ev.eventId, ev]));
  }

  private async aggregateRoom(
    parents: EventView[],
    rows: RelationRow[],
    children: Map<string, StoredEvent>,
    viewer: Viewer,
    depth: number,
    out: Map<string, JsonObject>,
  ): Promise<void> {
    const byParent = new Map<string, RelationRow[]>();
    for (const r of rows) {
      if (!children.has(r.event_id)) continue;
      let l = byParent.get(r.relates_to);
      if (!l) byParent.set(r.relates_to, (l = []));
      l.push(r);
    }
    const edits = new Map<string, StoredEvent>();
    const threads = new Map<string, { count: number; latest: StoredEvent; participated: boolean }>();
    const references = new Map<string, string[]>();
    for (const parent of parents) {
      const mine = byParent.get(parent.eventId);
      if (!mine) continue;
      // Rows are in topological order: the last thread reply is the latest.
      for (const r of mine) {
        const child = children.get(r.event_id)!;
        if (r.rel_type === 'm.replace') {
          if (!isValidReplacement(parent, child)) continue;
          const best = edits.get(parent.eventId);
          if (!best || isMoreRecent(child, best)) edits.set(parent.eventId, child);
        } else if (r.rel_type === 'm.thread') {
          const t = threads.get(parent.eventId);
          const participated = parent.pdu.sender === viewer.userId || r.sender === viewer.userId;
          if (!t) threads.set(parent.eventId, { count: 1, latest: child, participated });
          else threads.set(parent.eventId, { count: t.count + 1, latest: child, participated: t.participated || participated });
        } else if (r.rel_type === 'm.reference') {
          let l = references.get(parent.eventId);
          if (!l) references.set(parent.eventId, (l = []));
          l.push(r.event_id);
        }
      }
    }
    const [editEvents, latestEvents] = await Promise.all([
      this.formatById([...edits.values()], viewer, { bundle: false }),
      this.formatById([...threads.values()].map((t) => t.latest), viewer, { bundleDepth: depth + 1 }),
    ]);
    for (const parent of parents) {
      const rel: JsonObject = {};
      const edit = edits.get(parent.eventId);
      const editEvent = edit && editEvents.get(edit.eventId);
      if (editEvent) rel['m.replace'] = editEvent as unknown as JsonObject;
      const thread = threads.get(parent.eventId);
      const latest = thread && latestEvents.get(thread.latest.eventId);
      if (thread && latest) {
        rel['m.thread'] = { latest_event: latest as unknown as JsonObject, count: thread.count, current_user_participated: thread.participated };
      }
      const refs = references.get(parent.eventId);
      if (refs) rel['m.reference'] = { chunk: refs.map((id) => ({ event_id: id })) };
      if (Object.keys(rel).length > 0) out.set(parent.eventId, rel);
    }
  }

  private async formatById(events: StoredEvent[], viewer: Viewer, opts: { bundle?: boolean; bundleDepth?: number }): Promise<Map<string, ClientEvent>> {
    if (events.length === 0) return new Map();
    const formatted = await this.core.format(events, viewer, undefined, opts);
    return new Map(formatted.map((e) => [e.event_id, e]));
  }
}

/** spec modules/event_replacements "Validity of replacement events" (the shared room is checked by the caller). */
export function isValidReplacement(original: EventView, edit: EventView): boolean {
  if (original.redactedBy !== null) return false;
  if (edit.pdu.sender !== original.pdu.sender || edit.pdu.type !== original.pdu.type) return false;
  if (typeof edit.pdu.state_key === 'string' || typeof original.pdu.state_key === 'string') return false;
  if (relationOf(original.eventId, original.pdu)?.relType === 'm.replace') return false;
  // An encrypted edit carries m.new_content inside its ciphertext.
  if (edit.pdu.type === 'm.room.encrypted') return true;
  const nc = (edit.pdu.content as Record<string, unknown>)['m.new_content'];
  return typeof nc === 'object' && nc !== null && !Array.isArray(nc);
}

/** Later `origin_server_ts` wins; on a tie, the lexicographically larger event id. */
function isMoreRecent(a: StoredEvent, b: StoredEvent): boolean {
  if (a.pdu.origin_server_ts !== b.pdu.origin_server_ts) return a.pdu.origin_server_ts > b.pdu.origin_server_ts;
  return a.eventId > b.eventId;
}
