/**
 * One room's PDUs from a transaction, with gaps filled (spec: server-server API, "PDUs",
 * retrieving missing events): a PDU whose prev or auth events are unknown here is tried again
 * with the events between it and the room's forward extremities, fetched from the sending server
 * with get_missing_events; if the gap is still open, with the state before the PDU and its auth
 * chain from the sender's /state (the history in between stays a gap, for backfill). Every event
 * goes through the one inbound path.
 */
import type { Logger } from 'pino';
import { computeEventId } from '../../core/hashes.js';
import type { RoomVersion } from '../../core/room-versions.js';
import { stateKey, type Pdu, type StateMap } from '../../core/types.js';
import type { InboundResult } from '../../rooms/inbound/receive.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import type { FederationClient } from '../client.js';

/** Events asked for in one get_missing_events call. */
const MISSING_LIMIT = 50;
/** PDUs of one transaction whose state may be fetched: a flood of unconnected events costs no more. */
const MAX_STATE_FETCHES = 5;

export interface GapDeps {
  core: RoomsCore;
  client: FederationClient;
  logger: Logger;
}

export async function receiveFillingGaps(deps: GapDeps, origin: string, roomId: string, version: RoomVersion, raws: unknown[]): Promise<InboundResult[]> {
  const { core, client } = deps;
  const results = await core.inbound.receive(roomId, { pdus: raws });
  const rawById = new Map<string, unknown>();
  for (const raw of raws) {
    const id = safeEventId(raw, version);
    if (id !== undefined) rawById.set(id, raw);
  }
  const gapped = () => results.filter((r) => r.status === 'missing' && r.eventId !== undefined && rawById.has(r.eventId)).map((r) => r.eventId!);
  const replace = (fresh: InboundResult[], ids: string[]) => {
    for (const r of fresh) {
      if (r.eventId === undefined || !ids.includes(r.eventId)) continue;
      const i = results.findIndex((x) => x.eventId === r.eventId);
      if (i >= 0) results[i] = r;
    }
  };

  let gaps = gapped();
  if (gaps.length === 0) return results;
  const head = await core.heads.get(roomId);
  try {
    const res = await client.request<{ events?: unknown[] }>(origin, {
      method: 'POST',
      path: `/_matrix/federation/v1/get_missing_events/${encodeURIComponent(roomId)}`,
      body: { earliest_events: head?.extremities.map((x) => x.eventId) ?? [], latest_events: gaps, limit: MISSING_LIMIT, min_depth: 0 },
    });
    const fetched = Array.isArray(res.events) ? res.events : [];
    if (fetched.length > 0) replace(await core.inbound.receive(roomId, { pdus: [...fetched, ...gaps.map((id) => rawById.get(id))] }), gaps);
  } catch (e) {
    deps.logger.info({ origin, roomId, err: (e as Error).message }, 'get_missing_events failed');
  }

  gaps = gapped().slice(0, MAX_STATE_FETCHES);
  for (const id of gaps) {
    try {
      const res = await client.request<{ pdus?: unknown[]; auth_chain?: unknown[] }>(origin, {
        method: 'GET',
        path: `/_matrix/federation/v1/state/${encodeURIComponent(roomId)}?event_id=${encodeURIComponent(id)}`,
        timeoutMs: 60_000,
        maxBytes: 256 * 1024 * 1024,
      });
      const state = Array.isArray(res.pdus) ? res.pdus : [];
      const authChain = Array.isArray(res.auth_chain) ? res.auth_chain : [];
      const before: StateMap = new Map();
      for (const raw of state) {
        const ev = raw as Pdu;
        const sid = safeEventId(raw, version);
        if (sid !== undefined && typeof ev.type === 'string' && typeof ev.state_key === 'string') before.set(stateKey(ev.type, ev.state_key), sid);
      }
      replace(await core.inbound.receive(roomId, { outliers: [...authChain, ...state], pdus: [rawById.get(id)], stateBefore: new Map([[id, before]]) }), [id]);
    } catch (e) {
      deps.logger.info({ origin, roomId, eventId: id, err: (e as Error).message }, 'fetching the state before a received event failed');
    }
  }
  return results;
}

function safeEventId(raw: unknown, version: RoomVersion): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  try {
    return computeEventId(raw as Pdu, version);
  } catch {
    return undefined;
  }
}
