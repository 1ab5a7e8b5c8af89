/**
 * Questions this server asks other servers for its clients (server-server query.yaml,
 * public_rooms.yaml, space_hierarchy.yaml): what an alias of theirs points to, a profile of one
 * of their users, their published room directory, a space they are in. A remote "not found" stays a not found; a server that cannot be
 * reached, or answers wrongly, is a 502 for the client.
 */
import type { JsonObject } from '../core/types.js';
import type { PublicRoomsQuery, PublicRoomsResponse } from '../directory/public-rooms.js';
import { MatrixError } from '../http/errors.js';
import { FederationRequestError, type FederationClient } from './client.js';

const QUERY_TIMEOUT_MS = 15_000;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The client's error for a failed query to `server`. */
export function queryFailed(e: unknown, server: string): MatrixError {
  if (e instanceof FederationRequestError && e.status >= 400 && e.status < 500 && e.errcode !== undefined) {
    const message = (e.body as { error?: unknown } | undefined)?.error;
    return new MatrixError(e.status, e.errcode, typeof message === 'string' ? message : `${server} answered ${e.status}`);
  }
  if (e instanceof MatrixError) return e;
  return new MatrixError(502, 'M_UNKNOWN', `Could not get an answer from ${server}: ${(e as Error).message}`);
}

function badAnswer(server: string, what: string): MatrixError {
  return new MatrixError(502, 'M_UNKNOWN', `${server} answered ${what} with an unexpected shape`);
}

export class FederationQueries {
  constructor(private readonly client: FederationClient) {}

  /** The room an alias of `server` points to; null when that server does not know it. */
  async roomAlias(server: string, alias: string): Promise<{ roomId: string; servers: string[] } | null> {
    let answer: JsonObject;
    try {
      answer = await this.client.request<JsonObject>(server, {
        method: 'GET',
        path: `/_matrix/federation/v1/query/directory?room_alias=${encodeURIComponent(alias)}`,
        timeoutMs: QUERY_TIMEOUT_MS,
      });
    } catch (e) {
      if (e instanceof FederationRequestError && e.status === 404) return null;
      throw queryFailed(e, server);
    }
    if (typeof answer.room_id !== 'string' || !Array.isArray(answer.servers)) throw badAnswer(server, 'the alias query');
    const servers = answer.servers.filter((s): s is string => typeof s === 'string');
    return { roomId: answer.room_id, servers };
  }

  /** A profile held by `server`, whole or one field. */
  async profile(server: string, userId: string, field?: string): Promise<JsonObject> {
    const q = `user_id=${encodeURIComponent(userId)}${field !== undefined ? `&field=${encodeURIComponent(field)}` : ''}`;
    let answer: unknown;
    try {
      answer = await this.client.request(server, { method: 'GET', path: `/_matrix/federation/v1/query/profile?${q}`, timeoutMs: QUERY_TIMEOUT_MS });
    } catch (e) {
      throw queryFailed(e, server);
    }
    if (!isObject(answer)) throw badAnswer(server, 'the profile query');
    return answer;
  }

  /** The published room directory of `server`. */
  async publicRooms(server: string, q: PublicRoomsQuery): Promise<PublicRoomsResponse> {
    let answer: unknown;
    try {
      if (q.filter !== undefined) {
        answer = await this.client.request(server, { method: 'POST', path: '/_matrix/federation/v1/publicRooms', body: { ...q }, timeoutMs: QUERY_TIMEOUT_MS });
      } else {
        const params = new URLSearchParams();
        if (q.limit !== undefined) params.set('limit', String(q.limit));
        if (q.since !== undefined) params.set('since', q.since);
        const qs = params.size > 0 ? `?${params}` : '';
        answer = await this.client.request(server, { method: 'GET', path: `/_matrix/federation/v1/publicRooms${qs}`, timeoutMs: QUERY_TIMEOUT_MS });
      }
    } catch (e) {
      throw queryFailed(e, server);
    }
    if (!isObject(answer) || !Array.isArray(answer.chunk)) throw badAnswer(server, 'the room directory');
    return answer as unknown as PublicRoomsResponse;
  }

  /**
   * A space and its children as `server` shows them to this one (its answer unchecked beyond being
   * an object: the directory reads what it needs); null when it does not know the room or will not
   * show it (404).
   */
  async hierarchy(server: string, roomId: string, suggestedOnly: boolean): Promise<JsonObject | null> {
    let answer: unknown;
    try {
      answer = await this.client.request(server, {
        method: 'GET',
        path: `/_matrix/federation/v1/hierarchy/${encodeURIComponent(roomId)}?suggested_only=${suggestedOnly}`,
        timeoutMs: QUERY_TIMEOUT_MS,
      });
    } catch (e) {
      if (e instanceof FederationRequestError && e.status === 404) return null;
      throw queryFailed(e, server);
    }
    if (!isObject(answer)) throw badAnswer(server, 'the space hierarchy');
    return answer;
  }
}
