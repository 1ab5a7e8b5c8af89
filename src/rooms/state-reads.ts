import type { ClientEvent } from '../core/types.js';
import { stateKey, type StateMap } from '../core/types.js';
import { forbidden, notFound } from '../http/errors.js';
import type { Viewer } from './events/client-format.js';
import type { RoomsCore } from './room-core.js';
import type { Membership } from './service.js';
import { selectMembership } from './store/memberships-table.js';
import { selectStateGroupAt } from './store/events-table.js';
import { parseStreamToken } from './tokens.js';

/**
 * Which state a user may read: the current state while joined (or when the
 * room is world-readable), the state when they left once they have left or
 * were banned after being joined; otherwise 403.
 */
export async function readableState(core: RoomsCore, userId: string, roomId: string): Promise<{ state: StateMap; upTo: number | null }> {
  const head = await core.requireHead(roomId);
  const m = head.members.get(userId);
  if (m?.membership === 'join') return { state: head.state, upTo: null };
  if (m && (m.membership === 'leave' || m.membership === 'ban')) {
    const [row, history] = await Promise.all([
      selectMembership(core.ctx.db, roomId, userId),
      core.visibility.membershipHistory(roomId, userId),
    ]);
    const wasJoined = history.some((h) => h.value === 'join');
    if (wasJoined && !(row && Number(row.forgotten) === 1)) {
      const leave = await core.events.get(m.eventId);
      if (leave?.stateGroup != null && leave.streamPos !== null) {
        return { state: await core.groups.load(leave.stateGroup), upTo: leave.streamPos };
      }
    }
  }
  const hv = await core.visibility.currentVisibility(roomId);
  if (hv === 'world_readable') return { state: head.state, upTo: null };
  throw forbidden('You are not a member of this room');
}

async function formatState(core: RoomsCore, ids: Iterable<string>, viewer?: Viewer): Promise<ClientEvent[]> {
  const loaded = await core.events.getMany(ids);
  return core.format([...loaded.values()], viewer);
}

/** GET /rooms/{roomId}/state. */
export async function readRoomState(core: RoomsCore, viewer: Viewer, roomId: string): Promise<ClientEvent[]> {
  const { state } = await readableState(core, viewer.userId, roomId);
  return formatState(core, state.values(), viewer);
}

/** GET /rooms/{roomId}/state/{eventType}/{stateKey}. */
export async function readStateEvent(
  core: RoomsCore,
  viewer: Viewer,
  roomId: string,
  type: string,
  key: string,
  format: 'content' | 'event',
): Promise<unknown> {
  const { state } = await readableState(core, viewer.userId, roomId);
  const id = state.get(stateKey(type, key));
  if (!id) throw notFound('Event not found');
  const [ev] = await formatState(core, [id], viewer);
  if (!ev) throw notFound('Event not found');
  return format === 'event' ? ev : ev.content;
}

/** GET /rooms/{roomId}/members. */
export async function readMembers(
  core: RoomsCore,
  viewer: Viewer,
  roomId: string,
  q: { at?: string; membership?: Membership; not_membership?: Membership },
): Promise<ClientEvent[]> {
  await core.awaitFullState(roomId);
  const readable = await readableState(core, viewer.userId, roomId);
  let state = readable.state;
  if (q.at !== undefined && q.at !== '') {
    let pos = parseStreamToken(q.at);
    if (readable.upTo !== null) pos = Math.min(pos, readable.upTo);
    const group = await selectStateGroupAt(core.ctx.db, roomId, pos);
    state = group === null ? new Map() : await core.groups.load(group);
  }
  const ids: string[] = [];
  for (const [k, id] of state) if (k.startsWith('m.room.member\u0000')) ids.push(id);
  const events = await formatState(core, ids, viewer);
  const { membership, not_membership: notMembership } = q;
  if (membership === undefined && notMembership === undefined) return events;
  return events.filter((ev) => {
    const m = ev.content?.membership;
    if (membership !== undefined && notMembership !== undefined) return m === membership || m !== notMembership;
    if (membership !== undefined) return m === membership;
    return m !== notMembership;
  });
}

/** GET /rooms/{roomId}/joined_members. */
export async function readJoinedMembers(core: RoomsCore, userId: string, roomId: string): Promise<Record<string, { display_name?: string; avatar_url?: string }>> {
  await core.awaitFullState(roomId);
  const head = await core.requireHead(roomId);
  if (head.members.get(userId)?.membership !== 'join') throw forbidden('You are not joined to this room');
  const out: Record<string, { display_name?: string; avatar_url?: string }> = {};
  for (const [id, m] of head.members) {
    if (m.membership !== 'join') continue;
    const entry: { display_name?: string; avatar_url?: string } = {};
    if (m.displayName !== null) entry.display_name = m.displayName;
    if (m.avatarUrl !== null) entry.avatar_url = m.avatarUrl;
    out[id] = entry;
  }
  return out;
}
