/**
 * GET /_matrix/client/v1/rooms/{roomId}/hierarchy (space_hierarchy.yaml,
 * client-server "Spaces"): the space tree under a room, depth first, with
 * each space's children ordered as the spec says ("Ordering of children
 * within a space"). A room is shown only when the requester may see or join
 * it (joined, invited, a public, knockable or world-readable room, or a
 * restricted one whose allow condition they meet); a room they may not see is
 * left out together with the part of the tree under it. A room this server is
 * not in is asked of the servers in its `m.space.child` event's `via` (the
 * root, the servers rootServers finds) through the
 * federation `/hierarchy` (remote-spaces.ts), and shown under the same rule;
 * one no server describes is left out.
 *
 * Pagination is stateless: `next_batch` names the root, the filters and how
 * many rooms were already served, and the next page walks the tree again and
 * skips those. A tree that changes between pages can shift a room across a
 * page boundary; the walk is bounded (MAX_WALK rooms), so a page costs the
 * same whatever the token.
 */
import type { Context } from '../context.js';
import { serverNameOf } from '../core/ids.js';
import type { ClientEvent, JsonObject } from '../core/types.js';
import { forbidden, invalidParam } from '../http/errors.js';
import type { RoomMembership } from '../rooms/service.js';
import type { RemoteSpace, RoomView, SpaceChild } from './remote-spaces.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 100;
const DEFAULT_MAX_DEPTH = 10;
const MAX_DEPTH = 50;
/** Rooms looked at per request, whatever the tree's size. */
const MAX_WALK = 2000;
const CHILD = 'm.space.child';

export interface HierarchyQuery {
  suggested_only?: string;
  limit?: string;
  max_depth?: string;
  from?: string;
}

interface Token {
  root: string;
  suggested: boolean;
  depth: number;
  skip: number;
}

export async function spaceHierarchy(ctx: Context, userId: string, roomId: string, q: HierarchyQuery): Promise<{ rooms: JsonObject[]; next_batch?: string }> {
  const suggested = parseBool(q.suggested_only, 'suggested_only');
  const limit = Math.min(parseCount(q.limit, 'limit', 1) ?? DEFAULT_LIMIT, MAX_LIMIT);
  const depth = Math.min(parseCount(q.max_depth, 'max_depth', 0) ?? DEFAULT_MAX_DEPTH, MAX_DEPTH);
  let skip = 0;
  if (q.from !== undefined) {
    const t = decodeToken(q.from);
    if (!t || t.root !== roomId) throw invalidParam('Unknown pagination token');
    if (t.suggested !== suggested || t.depth !== depth) throw invalidParam('suggested_only and max_depth cannot change on paginated requests');
    skip = t.skip;
  }

  const own = await ctx.services.rooms.getMemberships(userId);
  const memberships = new Map(own.map((m) => [m.roomId, m.membership as string]));
  const remote = new RemoteWalk(ctx, memberships, suggested);
  const viewOf = async (id: string, via: string[]): Promise<RoomView | null> => {
    const local = await localView(ctx, id, memberships);
    // Without a user joined here, what is held (an invite's stripped state, state from before
    // everyone left) may be partial or stale: a resident server is asked first.
    if (local === 'unknown' || !(await serverJoined(ctx, id))) {
      const asked = await remote.view(id, via);
      if (asked || local === 'unknown') return asked;
    }
    return local === 'hidden' ? null : local;
  };
  const root = await viewOf(roomId, await rootServers(ctx, roomId, own));
  if (!root) throw forbidden('You are not allowed to view this room.');

  const rooms: JsonObject[] = [];
  const seen = new Set<string>([roomId]);
  // Depth-first: a stack of rooms still to visit, the next one on top.
  const stack: { id: string; depth: number; via: string[]; view?: RoomView }[] = [{ id: roomId, depth: 0, via: [], view: root }];
  let walked = 0;
  let served = 0;
  while (stack.length > 0 && walked < MAX_WALK) {
    const next = stack.pop()!;
    const view = next.view ?? (await viewOf(next.id, next.via));
    walked++;
    if (!view) continue;
    const children = view.children.filter((c) => !suggested || c.content.suggested === true);
    if (served >= skip) {
      if (rooms.length === limit) {
        stack.push({ ...next, view });
        break;
      }
      rooms.push({ ...view.chunk, children_state: children.map(strippedChild) });
    }
    served++;
    if (next.depth >= depth) continue;
    const ordered = orderChildren(children).filter((c) => !seen.has(c.state_key));
    for (const c of ordered) seen.add(c.state_key);
    for (let i = ordered.length - 1; i >= 0; i--) stack.push({ id: ordered[i].state_key, depth: next.depth + 1, via: viaOf(ordered[i]) });
  }
  const out: { rooms: JsonObject[]; next_batch?: string } = { rooms };
  if (stack.length > 0 && walked < MAX_WALK) out.next_batch = encodeToken({ root: roomId, suggested, depth, skip: skip + rooms.length });
  return out;
}

/**
 * GET /_matrix/federation/v1/hierarchy/{roomId} (server-server space_hierarchy.yaml): the space
 * and its direct children, unpaginated, as a user of `origin` could see them: a room where a user
 * of `origin` is joined or invited, a public, knockable or world-readable one, or a restricted one (its
 * allowed rooms are listed: the requesting server decides for its users). Children this server
 * knows but `origin` may not see are `inaccessible_children`; unknown ones are left out. Null
 * when the space itself is unknown or not visible.
 */
export async function federationHierarchy(ctx: Context, origin: string, roomId: string, suggestedOnly: boolean): Promise<JsonObject | null> {
  const viewOf = async (id: string): Promise<RoomView | null | 'hidden'> => {
    // The origin's best membership: a server with a user invited may join the room.
    let best: string | undefined;
    for (const [userId, m] of (await ctx.services.rooms.core.heads.get(id))?.members ?? []) {
      if (serverNameOf(userId) !== origin) continue;
      if (m.membership === 'join') best = 'join';
      else if (m.membership === 'invite' && best === undefined) best = 'invite';
    }
    const view = await localView(ctx, id, new Map<string, string>(best ? [[id, best]] : []), true);
    return view === 'unknown' ? null : view;
  };
  const root = await viewOf(roomId);
  if (root === null || root === 'hidden') return null;
  const childEvents = root.children.filter((c) => !suggestedOnly || c.content.suggested === true);
  const children: JsonObject[] = [];
  const inaccessible: string[] = [];
  for (const c of orderChildren(childEvents)) {
    const view = await viewOf(c.state_key!);
    if (view === 'hidden') inaccessible.push(c.state_key!);
    else if (view) children.push({ ...view.chunk, children_state: view.children.map(strippedChild) });
  }
  return { room: { ...root.chunk, children_state: childEvents.map(strippedChild) }, children, inaccessible_children: inaccessible };
}

/**
 * The room's summary and children when the user may see it; null when they may not or it is
 * unknown here. `forServer`: a restricted room is shown (the asking server checks its users).
 */
export async function roomView(ctx: Context, roomId: string, memberships: Map<string, string>, forServer = false): Promise<RoomView | null> {
  const view = await localView(ctx, roomId, memberships, forServer);
  return typeof view === 'string' ? null : view;
}

/** As roomView, telling a room this server is not in ('unknown') from one the user may not see ('hidden'). */
export async function localView(ctx: Context, roomId: string, memberships: Map<string, string>, forServer = false): Promise<RoomView | 'hidden' | 'unknown'> {
  const state = await ctx.services.rooms.getCurrentState(roomId, ['m.room.create', 'm.room.encryption', 'm.room.join_rules', CHILD]);
  const create = state.find((e) => e.type === 'm.room.create');
  if (!create) return 'unknown';
  const summary = (await ctx.services.rooms.getRoomSummaries([roomId])).get(roomId);
  if (!summary) return 'unknown';
  const joinRules = state.find((e) => e.type === 'm.room.join_rules')?.content;
  const allowed = allowedRoomIds(joinRules);
  const membership = memberships.get(roomId);
  const restricted = summary.join_rule === 'restricted' || summary.join_rule === 'knock_restricted';
  if (!(forServer && restricted) && !maySee(summary.join_rule, summary.world_readable, membership, allowed, memberships)) return 'hidden';

  const chunk: JsonObject = { ...(summary as unknown as JsonObject) };
  const version = create.content.room_version;
  chunk.room_version = typeof version === 'string' ? version : '1';
  const algorithm = state.find((e) => e.type === 'm.room.encryption')?.content.algorithm;
  if (typeof algorithm === 'string') chunk.encryption = algorithm;
  if (allowed.length > 0 && (summary.join_rule === 'restricted' || summary.join_rule === 'knock_restricted')) chunk.allowed_room_ids = allowed;
  // A child event without a `via` list is not a child (spec "m.space.child").
  const children = state.filter((e) => e.type === CHILD && Array.isArray(e.content.via) && e.content.via.length > 0).map(asChild);
  return { chunk, children };
}

/**
 * The rooms of one client walk that this server is not in: each space asked once (RemoteSpaces),
 * its children's summaries taken from its answer, every room shown to the user only as maySee
 * allows (the answering server filtered for this server, not for the user: space_hierarchy.yaml).
 */
export class RemoteWalk {
  private readonly described = new Map<string, RoomView>();
  private readonly inaccessible = new Set<string>();

  constructor(
    private readonly ctx: Context,
    private readonly memberships: Map<string, string>,
    private readonly suggested: boolean,
  ) {}

  async view(roomId: string, via: string[]): Promise<RoomView | null> {
    if (!this.ctx.config.federation.enabled || this.inaccessible.has(roomId)) return null;
    let view = this.described.get(roomId);
    if (!view) {
      const space = await this.ctx.services.directory.remoteSpaces.get(roomId, via, this.suggested);
      if (!space) return null;
      this.learn(space);
      view = space.room;
    }
    const c = view.chunk;
    const allowed = Array.isArray(c.allowed_room_ids) ? (c.allowed_room_ids as string[]) : [];
    const joinRule = typeof c.join_rule === 'string' ? c.join_rule : undefined;
    return maySee(joinRule, c.world_readable === true, this.memberships.get(roomId), allowed, this.memberships) ? view : null;
  }

  private learn(space: RemoteSpace): void {
    for (const [id, v] of space.children) if (!this.described.has(id)) this.described.set(id, v);
    for (const id of space.inaccessible) this.inaccessible.add(id);
  }
}

function asChild(e: ClientEvent): SpaceChild {
  return { type: e.type, state_key: e.state_key!, content: e.content, sender: e.sender, origin_server_ts: e.origin_server_ts };
}

/**
 * Where to ask for a root this server is not in, as the client API names no server: the server
 * of whoever sent the user's own membership event (the inviter of an invite held here), the
 * servers named by the `via` of the root's `m.space.child` event in each room the user is
 * joined to (a parent space, how a space is usually come to), then the server its room ID
 * names. Room version 12's room IDs name none, so the first two are all there is for them.
 */
async function rootServers(ctx: Context, roomId: string, own: readonly RoomMembership[]): Promise<string[]> {
  const servers: string[] = [];
  const add = (s: string | undefined) => {
    if (s !== undefined && !servers.includes(s)) servers.push(s);
  };
  const mine = own.find((m) => m.roomId === roomId);
  const sender = mine !== undefined ? (await ctx.services.rooms.core.events.get(mine.eventId))?.pdu.sender : undefined;
  if (sender !== undefined) add(serverNameOf(sender));
  const parents = own.filter((m) => m.membership === 'join' && m.roomId !== roomId).map((m) => m.roomId);
  for (const ev of await ctx.services.rooms.getStateEventInRooms(parents, CHILD, roomId)) for (const s of viaOf(asChild(ev))) add(s);
  add(serverNameOf(roomId));
  return servers;
}

/** Whether a user of this server is joined to the room. */
async function serverJoined(ctx: Context, roomId: string): Promise<boolean> {
  return (await ctx.services.rooms.getJoinedMembers(roomId)).some((u) => serverNameOf(u) === ctx.serverName);
}

/** The servers a child event names to reach the child through. */
function viaOf(c: SpaceChild): string[] {
  return Array.isArray(c.content.via) ? c.content.via.filter((s): s is string => typeof s === 'string') : [];
}

/** The rooms whose members may join under a restricted rule. */
function allowedRoomIds(joinRules: JsonObject | undefined): string[] {
  const allow = joinRules?.allow;
  if (!Array.isArray(allow)) return [];
  const out: string[] = [];
  for (const c of allow) {
    if (typeof c !== 'object' || c === null || Array.isArray(c)) continue;
    if (c.type === 'm.room_membership' && typeof c.room_id === 'string') out.push(c.room_id);
  }
  return out;
}

/** space_hierarchy.yaml, `rooms`: who is shown a room. */
function maySee(joinRule: string | undefined, worldReadable: boolean, membership: string | undefined, allowed: string[], memberships: Map<string, string>): boolean {
  if (membership === 'ban') return false;
  if (membership === 'join' || membership === 'invite') return true;
  if (worldReadable) return true;
  switch (joinRule) {
    case 'public':
    case 'knock':
      return true;
    case 'restricted':
      return allowed.some((id) => memberships.get(id) === 'join');
    case 'knock_restricted':
      return true;
    default:
      return false;
  }
}

/**
 * Children in the spec's order: those with a valid `order` (printable ASCII,
 * at most 50 characters) by it, then the rest by the child event's
 * origin_server_ts; ties by room id.
 */
function orderChildren(children: SpaceChild[]): SpaceChild[] {
  const orderOf = (e: SpaceChild) => {
    const o = e.content.order;
    return typeof o === 'string' && o.length <= 50 && /^[\x20-\x7e]*$/.test(o) ? o : undefined;
  };
  return [...children].sort((a, b) => {
    const oa = orderOf(a);
    const ob = orderOf(b);
    if (oa !== undefined && ob !== undefined && oa !== ob) return oa < ob ? -1 : 1;
    if (oa !== undefined && ob === undefined) return -1;
    if (oa === undefined && ob !== undefined) return 1;
    if (a.origin_server_ts !== b.origin_server_ts) return a.origin_server_ts - b.origin_server_ts;
    return a.state_key < b.state_key ? -1 : a.state_key > b.state_key ? 1 : 0;
  });
}

/** A child event as the hierarchy shows it: stripped state with its origin_server_ts. */
function strippedChild(e: SpaceChild): JsonObject {
  return { type: e.type, state_key: e.state_key, content: e.content, sender: e.sender, origin_server_ts: e.origin_server_ts };
}

function parseBool(v: string | undefined, name: string): boolean {
  if (v === undefined || v === 'false') return false;
  if (v === 'true') return true;
  throw invalidParam(`${name} must be true or false`);
}

function parseCount(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,9}$/.test(v) || Number(v) < min) throw invalidParam(`${name} must be an integer of at least ${min}`);
  return Number(v);
}

function encodeToken(t: Token): string {
  return Buffer.from(JSON.stringify([t.root, t.suggested ? 1 : 0, t.depth, t.skip])).toString('base64url');
}

function decodeToken(s: string): Token | null {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    if (!Array.isArray(v) || v.length !== 4) return null;
    const [root, suggested, depth, skip] = v as unknown[];
    if (typeof root !== 'string' || (suggested !== 0 && suggested !== 1) || !Number.isSafeInteger(depth) || !Number.isSafeInteger(skip) || (skip as number) < 0) return null;
    return { root, suggested: suggested === 1, depth: depth as number, skip: skip as number };
  } catch {
    return null;
  }
}
