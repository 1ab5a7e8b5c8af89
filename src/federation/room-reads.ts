/**
 * What the read endpoints serve from the room graph, and to whom. A server may see an event when
 * the room is world-readable at it, when one of its users is joined (or, under `invited`
 * visibility, invited) in the state after the event, or under `shared` visibility when one of
 * its users is joined now (spec: client-server API, "History visibility", applied to servers as
 * a whole; Synapse's filter_events_for_server).
 */
import { authEventIds, prevEventIds } from '../core/auth-rules.js';
import { serverNameOf } from '../core/ids.js';
import { redactPdu } from '../core/redaction.js';
import { splitStateKey, stateKey, type Pdu, type StateMap } from '../core/types.js';
import type { StoredEvent } from '../rooms/events/stored-event.js';
import type { RoomsCore } from '../rooms/room-core.js';

const HV = stateKey('m.room.history_visibility', '');

export class RoomReads {
  constructor(private readonly core: RoomsCore) {}

  /** The stored event if it belongs to `roomId` (when given) and was not rejected. */
  async event(eventId: string, roomId?: string): Promise<StoredEvent | undefined> {
    const ev = await this.core.events.get(eventId);
    if (!ev || ev.rejectedReason !== null) return undefined;
    if (roomId !== undefined && ev.roomId !== roomId) return undefined;
    return ev;
  }

  /** The event as it goes over federation: redacted if it was, without `unsigned`. */
  async pdu(ev: StoredEvent): Promise<Pdu> {
    let pdu = ev.pdu;
    if (ev.redactedBy !== null) {
      const version = await this.core.versionOf(ev.roomId);
      if (version) pdu = redactPdu(pdu, version);
    }
    if (pdu.unsigned === undefined) return pdu;
    const { unsigned: _unsigned, ...rest } = pdu;
    return rest as Pdu;
  }

  async pdus(events: StoredEvent[]): Promise<Pdu[]> {
    return Promise.all(events.map((e) => this.pdu(e)));
  }

  /** Whether `server` has a joined user in the room now. */
  async serverInRoom(server: string, roomId: string): Promise<boolean> {
    const head = await this.core.heads.get(roomId);
    if (!head) return false;
    for (const [userId, m] of head.members) if (m.membership === 'join' && serverNameOf(userId) === server) return true;
    return false;
  }

  /** Whether `server` may see `ev` (see the module comment). */
  async visibleTo(server: string, ev: StoredEvent, groupCache = new Map<number, Promise<boolean>>()): Promise<boolean> {
    const group = ev.stateGroup ?? ev.stateGroupBefore;
    // An outlier has no known state: only a server in the room now may see it.
    if (group === null) return this.serverInRoom(server, ev.roomId);
    let verdict = groupCache.get(group);
    if (!verdict) {
      verdict = this.visibleAtGroup(server, ev.roomId, group);
      groupCache.set(group, verdict);
    }
    return verdict;
  }

  private async visibleAtGroup(server: string, roomId: string, group: number): Promise<boolean> {
    const state = await this.core.groups.load(group);
    const hvId = state.get(HV);
    const hvEvent = hvId ? await this.core.events.get(hvId) : undefined;
    const raw = hvEvent?.pdu.content?.history_visibility;
    const visibility = raw === 'world_readable' || raw === 'invited' || raw === 'joined' ? raw : 'shared';
    if (visibility === 'world_readable') return true;
    const memberIds: string[] = [];
    for (const [k, id] of state) {
      const [type, sk] = splitStateKey(k);
      if (type === 'm.room.member' && serverNameOf(sk) === server) memberIds.push(id);
    }
    const members = await this.core.events.getMany(memberIds);
    for (const m of members.values()) {
      const membership = m.pdu.content?.membership;
      if (membership === 'join') return true;
      if (membership === 'invite' && visibility === 'invited') return true;
    }
    return visibility === 'shared' && (await this.serverInRoom(server, roomId));
  }

  /** Whether the room was joined with partial state not filled in within `waitMs`. */
  async hasPartialState(roomId: string, waitMs: number): Promise<boolean> {
    await this.core.awaitFullState(roomId, waitMs);
    return (await this.core.heads.get(roomId))?.partial != null;
  }

  /** The room state before `ev` (event ids), or undefined when it is not known (an outlier). */
  async stateBefore(ev: StoredEvent): Promise<StateMap | undefined> {
    if (ev.stateGroupBefore === null) return undefined;
    return this.core.groups.load(ev.stateGroupBefore);
  }

  /** The auth chain of `events`: every event reachable through auth_events, without `events` themselves unless reached. */
  async authChain(events: StoredEvent[]): Promise<StoredEvent[]> {
    const seen = new Map<string, StoredEvent>();
    let frontier = new Set(events.flatMap((e) => authEventIds(e.pdu)));
    while (frontier.size > 0) {
      const found = await this.core.events.getMany([...frontier].filter((id) => !seen.has(id)));
      const next = new Set<string>();
      for (const ev of found.values()) {
        seen.set(ev.eventId, ev);
        for (const id of authEventIds(ev.pdu)) if (!seen.has(id)) next.add(id);
      }
      frontier = next;
    }
    return [...seen.values()];
  }

  /**
   * Up to `limit` events walking back from `from` through prev_events, the `from` events
   * included, deepest first; only events `server` may see.
   */
  async backfill(server: string, roomId: string, from: string[], limit: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    const seen = new Set<string>();
    const groupCache = new Map<number, Promise<boolean>>();
    let queue: StoredEvent[] = [];
    const enqueue = async (ids: string[]) => {
      const fresh = ids.filter((id) => !seen.has(id));
      for (const id of fresh) seen.add(id);
      if (fresh.length === 0) return;
      const found = await this.core.events.getMany(fresh);
      for (const ev of found.values()) if (ev.roomId === roomId && ev.rejectedReason === null) queue.push(ev);
      queue.sort((a, b) => b.pdu.depth - a.pdu.depth);
    };
    await enqueue(from);
    while (queue.length > 0 && out.length < limit) {
      const ev = queue.shift()!;
      if (await this.visibleTo(server, ev, groupCache)) out.push(ev);
      await enqueue(prevEventIds(ev.pdu));
      if (queue.length > 10 * limit) queue = queue.slice(0, 10 * limit);
    }
    return out;
  }

  /**
   * get_missing_events (backfill.yaml): a breadth-first walk of prev_events from `latest`, the
   * `latest` events themselves and those in `earliest` left out (and not walked through), at
   * least `minDepth` deep, up to `limit`; only events `server` may see, oldest first.
   */
  async missingEvents(server: string, roomId: string, earliest: string[], latest: string[], limit: number, minDepth: number): Promise<StoredEvent[]> {
    const stop = new Set([...earliest, ...latest]);
    const out: StoredEvent[] = [];
    const groupCache = new Map<number, Promise<boolean>>();
    const starts = await this.core.events.getMany(latest);
    let frontier = [...new Set([...starts.values()].filter((e) => e.roomId === roomId).flatMap((e) => prevEventIds(e.pdu)))].filter((id) => !stop.has(id));
    const seen = new Set(frontier);
    while (frontier.length > 0 && out.length < limit) {
      const found = await this.core.events.getMany(frontier);
      const next: string[] = [];
      for (const id of frontier) {
        const ev = found.get(id);
        if (!ev || ev.roomId !== roomId || ev.rejectedReason !== null || ev.pdu.depth < minDepth) continue;
        if (!(await this.visibleTo(server, ev, groupCache))) continue;
        if (out.length < limit) out.push(ev);
        for (const p of prevEventIds(ev.pdu)) {
          if (!stop.has(p) && !seen.has(p)) {
            seen.add(p);
            next.push(p);
          }
        }
      }
      frontier = next;
    }
    return out.sort((x, y) => x.pdu.depth - y.pdu.depth);
  }
}
