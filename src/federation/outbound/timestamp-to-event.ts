/**
 * The event nearest a timestamp as other servers in the room know it (server-server events.yaml,
 * `GET /timestamp_to_event/{roomId}`), for a client's timestamp_to_event when this server lacks
 * part of the history. The servers with a joined member are asked, the room creator's first (the
 * spec's hint: the servers in the room longest are likeliest to hold what is asked); the first
 * answer in the right direction is taken, and kept when it is closer than what is held here.
 */
import type { Logger } from 'pino';
import type { RoomsCore } from '../../rooms/room-core.js';
import { joinedServers } from '../../rooms/state/room-head.js';
import type { FederationClient } from '../client.js';

/** Servers asked at most, and how long each may take: a client waits on this. */
const MAX_SERVERS = 3;
const TIMEOUT_MS = 10_000;

type Deps = { core: RoomsCore; client: FederationClient; serverName: string; logger: Logger };

/** The id of the event another server names, when closer to `ts` than `than` (null: nothing held here); null otherwise. */
export async function askEventNearTimestamp(deps: Deps, roomId: string, ts: number, dir: 'f' | 'b', than: number | null): Promise<string | null> {
  const { core, client } = deps;
  const head = await core.heads.get(roomId);
  if (!head) return null;
  // The creator's server first, when the creator is still in the room.
  const creator = head.members.get(head.creator);
  const servers = joinedServers(creator ? new Map([[head.creator, creator], ...head.members]) : head.members);
  servers.delete(deps.serverName);

  for (const server of [...servers].slice(0, MAX_SERVERS)) {
    let answer: { event_id?: unknown; origin_server_ts?: unknown };
    try {
      answer = await client.request(server, {
        method: 'GET',
        path: `/_matrix/federation/v1/timestamp_to_event/${encodeURIComponent(roomId)}?ts=${ts}&dir=${dir}`,
        timeoutMs: TIMEOUT_MS,
      });
    } catch (e) {
      deps.logger.info({ roomId, server, err: (e as Error).message }, 'timestamp_to_event not answered by a server');
      continue;
    }
    const { event_id: eventId, origin_server_ts: at } = answer;
    if (typeof eventId !== 'string' || typeof at !== 'number' || !Number.isSafeInteger(at)) continue;
    if (dir === 'f' ? at < ts : at > ts) continue;
    return than === null || Math.abs(at - ts) < Math.abs(than - ts) ? eventId : null;
  }
  return null;
}
