import type { RoomsCore } from './room-core.js';
import { selectCurrentStateOfTypes } from './store/current-state-table.js';
import { countJoined } from './store/memberships-table.js';

/** A room as the published room directory shows it (definitions/public_rooms_chunk.yaml). */
export interface RoomSummary {
  room_id: string;
  name?: string;
  topic?: string;
  canonical_alias?: string;
  avatar_url?: string;
  join_rule?: string;
  room_type?: string;
  world_readable: boolean;
  guest_can_join: boolean;
  num_joined_members: number;
}

const SUMMARY_TYPES = [
  'm.room.create',
  'm.room.name',
  'm.room.topic',
  'm.room.canonical_alias',
  'm.room.avatar',
  'm.room.join_rules',
  'm.room.history_visibility',
  'm.room.guest_access',
];

/** Summaries of many rooms from their current state: two queries plus cached event reads. Unknown rooms are absent. */
export async function roomSummaries(core: RoomsCore, roomIds: string[]): Promise<Map<string, RoomSummary>> {
  const out = new Map<string, RoomSummary>();
  if (roomIds.length === 0) return out;
  const [rows, counts] = await Promise.all([
    selectCurrentStateOfTypes(core.ctx.db, roomIds, SUMMARY_TYPES),
    countJoined(core.ctx.db, roomIds),
  ]);
  const events = await core.events.getMany(rows.map((r) => r.event_id));
  for (const r of rows) {
    let s = out.get(r.room_id);
    if (!s) {
      s = { room_id: r.room_id, world_readable: false, guest_can_join: false, num_joined_members: counts.get(r.room_id) ?? 0 };
      out.set(r.room_id, s);
    }
    const ev = events.get(r.event_id);
    if (!ev) continue;
    // A redacted event's content is gone for every reader, summaries included.
    const c = ev.redactedBy === null ? ev.pdu.content : {};
    const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
    switch (r.type) {
      case 'm.room.create': {
        const t = str(ev.pdu.content?.type);
        if (t) s.room_type = t;
        break;
      }
      case 'm.room.name': {
        const v = str(c.name);
        if (v) s.name = v;
        break;
      }
      case 'm.room.topic': {
        const v = str(c.topic);
        if (v) s.topic = v;
        break;
      }
      case 'm.room.canonical_alias': {
        const v = str(c.alias);
        if (v) s.canonical_alias = v;
        break;
      }
      case 'm.room.avatar': {
        const v = str(c.url);
        if (v) s.avatar_url = v;
        break;
      }
      case 'm.room.join_rules': {
        const v = str(c.join_rule);
        if (v) s.join_rule = v;
        break;
      }
      case 'm.room.history_visibility':
        s.world_readable = c.history_visibility === 'world_readable';
        break;
      case 'm.room.guest_access':
        s.guest_can_join = c.guest_access === 'can_join';
        break;
    }
  }
  return out;
}
