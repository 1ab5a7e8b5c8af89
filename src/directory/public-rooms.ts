import type { Context } from '../context.js';
import { invalidParam } from '../http/errors.js';
import type { RoomSummary } from '../rooms/summaries.js';
import { selectPublishedRooms } from './published-rooms-table.js';

export interface PublicRoomsQuery {
  limit?: number;
  since?: string;
  filter?: { generic_search_term?: string; room_types?: (string | null)[] };
}

export interface PublicRoomsResponse {
  chunk: RoomSummary[];
  next_batch?: string;
  prev_batch?: string;
  total_room_count_estimate: number;
}

const MAX_LIMIT = 500;

/** The body of `POST /publicRooms`, the same for clients and for other servers (public_rooms.yaml in both APIs). */
export function publicRoomsBodySchema(limit: { type: 'integer'; minimum?: number }) {
  return {
    type: 'object',
    properties: {
      limit,
      since: { type: 'string' },
      filter: {
        type: 'object',
        properties: {
          generic_search_term: { type: 'string' },
          room_types: { type: 'array', items: { type: ['string', 'null'] } },
        },
      },
      include_all_networks: { type: 'boolean' },
      third_party_instance_id: { type: 'string' },
    },
  };
}

function parseSince(since: string | undefined): number {
  if (since === undefined || since === '') return 0;
  const m = /^p(\d{1,9})$/.exec(since);
  if (!m) throw invalidParam('Invalid pagination token');
  return Number(m[1]);
}

function matchesSearch(s: RoomSummary, term: string): boolean {
  const t = term.toLowerCase();
  return [s.name, s.topic, s.canonical_alias, s.room_id].some((v) => v !== undefined && v.toLowerCase().includes(t));
}

/**
 * The published room directory, largest rooms first (ties by room id, a
 * stable order), paginated by offset tokens `p<offset>`.
 */
export async function listPublicRooms(ctx: Context, q: PublicRoomsQuery): Promise<PublicRoomsResponse> {
  const ids = await selectPublishedRooms(ctx.db);
  const summaries = await ctx.services.rooms.getRoomSummaries(ids);
  let rooms = [...summaries.values()];
  const term = q.filter?.generic_search_term?.trim();
  if (term) rooms = rooms.filter((s) => matchesSearch(s, term));
  const types = q.filter?.room_types;
  if (Array.isArray(types)) rooms = rooms.filter((s) => types.includes(s.room_type ?? null));
  rooms.sort((a, b) => b.num_joined_members - a.num_joined_members || (a.room_id < b.room_id ? -1 : a.room_id > b.room_id ? 1 : 0));

  const offset = parseSince(q.since);
  const limit = q.limit !== undefined && q.limit > 0 ? Math.min(Math.floor(q.limit), MAX_LIMIT) : rooms.length;
  const chunk = rooms.slice(offset, offset + limit);
  const out: PublicRoomsResponse = { chunk, total_room_count_estimate: rooms.length };
  if (offset + limit < rooms.length) out.next_batch = `p${offset + limit}`;
  if (offset > 0) out.prev_batch = `p${Math.max(0, offset - limit)}`;
  return out;
}
