/**
 * Rooms this server is not in, as a server that is describes them through the federation
 * `GET /hierarchy` (server-server space_hierarchy.yaml): the space's summary and children state,
 * the summaries of its children that the asking server may see, and those it may not
 * (`inaccessible_children`, not to be asked for again). The client `/hierarchy` walks into such
 * rooms, and `/room_summary` summarises one.
 *
 * Answers are kept a minute per node (the spec: "Responses to this endpoint should be cached"),
 * so that the pages of one walk ask each space once; a second node asks for itself. Only the
 * summary fields the spec defines are kept, with their types checked: a remote server's answer
 * must not make this server's answer break the client schema.
 */
import type { Logger } from 'pino';
import { boundedCache } from '../bounded-cache.js';
import type { JsonObject } from '../core/types.js';

export interface SpaceChild {
  type: string;
  state_key: string;
  content: JsonObject;
  sender: string;
  origin_server_ts: number;
}

/** One room as the hierarchy shows it: its summary fields and its `m.space.child` events. */
export interface RoomView {
  chunk: JsonObject;
  children: SpaceChild[];
}

export interface RemoteSpace {
  room: RoomView;
  /** Children described whole (their own children state included, or not spaces at all). */
  children: Map<string, RoomView>;
  inaccessible: Set<string>;
}

/** Asks `server` for the hierarchy of `roomId`; null for a 404, throws when the server fails. */
export type AskHierarchy = (server: string, roomId: string, suggestedOnly: boolean) => Promise<JsonObject | null>;

const CACHE_MS = 60_000;
const CACHE_ENTRIES = 1000;
/** Servers asked per room at most, from its `via` list in order. */
const MAX_SERVERS = 3;

const STRING_FIELDS = ['name', 'topic', 'avatar_url', 'canonical_alias', 'join_rule', 'room_type', 'encryption', 'room_version'] as const;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export class RemoteSpaces {
  private readonly cache = boundedCache<string, RemoteSpace>(CACHE_ENTRIES, { ttl: CACHE_MS });

  constructor(private readonly deps: { ask: AskHierarchy; serverName: string; logger: Logger }) {}

  /** The space as the first of `servers` that answers describes it; null when none does. */
  async get(roomId: string, servers: string[], suggestedOnly: boolean): Promise<RemoteSpace | null> {
    const key = `${suggestedOnly ? 's' : 'a'}${roomId}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const asked = [...new Set(servers)].filter((s) => s !== this.deps.serverName).slice(0, MAX_SERVERS);
    for (const server of asked) {
      let answer: JsonObject | null;
      try {
        answer = await this.deps.ask(server, roomId, suggestedOnly);
      } catch (err) {
        this.deps.logger.info({ err, server, roomId }, 'space hierarchy not had from a server');
        continue;
      }
      const space = answer && parseSpace(answer, roomId);
      if (!space) continue;
      this.cache.set(key, space);
      return space;
    }
    return null;
  }
}

function parseSpace(answer: JsonObject, roomId: string): RemoteSpace | null {
  const room = isObject(answer.room) ? parseRoom(answer.room) : null;
  if (!room || room.chunk.room_id !== roomId) return null;
  const children = new Map<string, RoomView>();
  for (const c of Array.isArray(answer.children) ? answer.children : []) {
    if (!isObject(c)) continue;
    const view = parseRoom(c);
    if (!view || view.chunk.room_id === roomId) continue;
    // A space described without its children state is asked for on its own when walked into.
    if (!Array.isArray(c.children_state) && view.chunk.room_type === 'm.space') continue;
    children.set(view.chunk.room_id as string, view);
  }
  const inaccessible = new Set((Array.isArray(answer.inaccessible_children) ? answer.inaccessible_children : []).filter((id): id is string => typeof id === 'string'));
  return { room, children, inaccessible };
}

/** A summary as room_summary.yaml defines it and its valid child events; null when a required field is missing or wrong. */
function parseRoom(raw: JsonObject): RoomView | null {
  const { room_id, num_joined_members, world_readable, guest_can_join } = raw;
  if (typeof room_id !== 'string' || !room_id.startsWith('!')) return null;
  if (!Number.isSafeInteger(num_joined_members) || typeof world_readable !== 'boolean' || typeof guest_can_join !== 'boolean') return null;
  const chunk: JsonObject = { room_id, num_joined_members, world_readable, guest_can_join };
  for (const f of STRING_FIELDS) if (typeof raw[f] === 'string') chunk[f] = raw[f];
  if (Array.isArray(raw.allowed_room_ids)) chunk.allowed_room_ids = raw.allowed_room_ids.filter((id): id is string => typeof id === 'string');
  const children: SpaceChild[] = [];
  for (const ev of Array.isArray(raw.children_state) ? raw.children_state : []) {
    if (!isObject(ev) || ev.type !== 'm.space.child' || typeof ev.state_key !== 'string' || !ev.state_key.startsWith('!')) continue;
    if (typeof ev.sender !== 'string' || !Number.isSafeInteger(ev.origin_server_ts) || !isObject(ev.content)) continue;
    // A child event without a `via` list is not a child (spec "m.space.child").
    if (!Array.isArray(ev.content.via) || ev.content.via.length === 0) continue;
    children.push({ type: ev.type, state_key: ev.state_key, content: ev.content, sender: ev.sender, origin_server_ts: ev.origin_server_ts as number });
  }
  return { chunk, children };
}
