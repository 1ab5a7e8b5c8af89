/**
 * Filling in a room's history from other servers when local history runs out (backfill.yaml):
 * the events before the room's backward extremities, asked of the servers in the room one after
 * another. Events of the answer whose prev events are neither in it nor stored here (its oldest)
 * go in with the state before them from the same server's /state, so the inbound path can place
 * them; the rest of the history beyond stays a gap for the next call. A room whose servers had
 * nothing is left alone for a minute, so clients paging it do not wait on them every time.
 */
import type { Logger } from 'pino';
import { prevEventIds } from '../../core/auth-rules.js';
import { computeEventId } from '../../core/hashes.js';
import type { RoomVersion } from '../../core/room-versions.js';
import { stateKey, type Pdu, type StateMap } from '../../core/types.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import { joinedServers } from '../../rooms/state/room-head.js';
import { selectBackwardExtremities } from '../../rooms/store/edges-table.js';
import type { FederationClient } from '../client.js';

const MAX_LIMIT = 100;
/** Extremities asked from at once. */
const MAX_FROM = 20;

/** After a room's backfill found nothing, clients paging it do not wait on other servers again for this long. */
const QUIET_AFTER_FAILURE_MS = 60_000;

type BackfillDeps = { core: RoomsCore; client: FederationClient; serverName: string; logger: Logger; now: () => number };

export class RemoteBackfill {
  private readonly quietUntil = new Map<string, number>();

  constructor(private readonly deps: BackfillDeps) {}

  /** True when some history was stored. */
  async run(roomId: string, limit: number): Promise<boolean> {
    if ((this.quietUntil.get(roomId) ?? 0) > this.deps.now()) return false;
    const got = await backfillOnce(this.deps, roomId, limit);
    if (got) this.quietUntil.delete(roomId);
    else {
      if (this.quietUntil.size >= 10_000) this.quietUntil.clear();
      this.quietUntil.set(roomId, this.deps.now() + QUIET_AFTER_FAILURE_MS);
    }
    return got;
  }
}

async function backfillOnce(deps: BackfillDeps, roomId: string, limit: number): Promise<boolean> {
  const { core, client } = deps;
  const head = await core.heads.get(roomId);
  if (!head) return false;
  const from = (await selectBackwardExtremities(core.ctx.db, roomId)).slice(0, MAX_FROM);
  if (from.length === 0) return false;
  const servers = joinedServers(head.members);
  servers.delete(deps.serverName);
  const query = [...from.map((id) => `v=${encodeURIComponent(id)}`), `limit=${Math.min(MAX_LIMIT, Math.max(1, limit))}`].join('&');
  for (const server of servers) {
    try {
      const res = await client.request<{ pdus?: unknown[] }>(server, {
        method: 'GET',
        path: `/_matrix/federation/v1/backfill/${encodeURIComponent(roomId)}?${query}`,
        // A client waits on this: a server that is slow to answer is passed over.
        timeoutMs: 10_000,
      });
      const pdus = (Array.isArray(res.pdus) ? res.pdus : []).filter((p): p is Pdu => typeof p === 'object' && p !== null);
      if (pdus.length === 0) continue;
      const stateBefore = await statesForOldest(deps, server, roomId, head.version, pdus);
      const results = await core.inbound.receive(roomId, { pdus, outliers: stateBefore.outliers, stateBefore: stateBefore.states });
      if (results.some((r) => r.status === 'accepted')) return true;
    } catch (e) {
      deps.logger.info({ roomId, server, err: (e as Error).message }, 'backfill from a server failed');
    }
  }
  return false;
}

/** For the events whose prev events are neither in the batch nor stored: the state before each, from `server`. */
async function statesForOldest(
  deps: { core: RoomsCore; client: FederationClient },
  server: string,
  roomId: string,
  version: RoomVersion,
  pdus: Pdu[],
): Promise<{ states: Map<string, StateMap>; outliers: unknown[] }> {
  const ids = new Map<string, Pdu>();
  for (const p of pdus) {
    const id = safeEventId(p, version);
    if (id !== undefined) ids.set(id, p);
  }
  const prevs = new Set([...ids.values()].flatMap((p) => prevEventIds(p)).filter((id) => !ids.has(id)));
  const stored = await deps.core.events.getMany(prevs);
  const states = new Map<string, StateMap>();
  const outliers: unknown[] = [];
  for (const [id, p] of ids) {
    const missing = prevEventIds(p).filter((prev) => !ids.has(prev) && !stored.get(prev)?.stateGroup);
    if (missing.length === 0) continue;
    const res = await deps.client.request<{ pdus?: unknown[]; auth_chain?: unknown[] }>(server, {
      method: 'GET',
      path: `/_matrix/federation/v1/state/${encodeURIComponent(roomId)}?event_id=${encodeURIComponent(id)}`,
      timeoutMs: 60_000,
      maxBytes: 256 * 1024 * 1024,
    });
    const state = Array.isArray(res.pdus) ? res.pdus : [];
    const map: StateMap = new Map();
    for (const raw of state) {
      const ev = raw as Pdu;
      const sid = safeEventId(ev, version);
      if (sid !== undefined && typeof ev.type === 'string' && typeof ev.state_key === 'string') map.set(stateKey(ev.type, ev.state_key), sid);
    }
    outliers.push(...(Array.isArray(res.auth_chain) ? res.auth_chain : []), ...state);
    states.set(id, map);
  }
  return { states, outliers };
}

function safeEventId(pdu: Pdu, version: RoomVersion): string | undefined {
  try {
    return computeEventId(pdu, version);
  } catch {
    return undefined;
  }
}
