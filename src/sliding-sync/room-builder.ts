import type { Context } from '../context.js';
import type { ClientEvent, JsonObject, JsonValue } from '../core/types.js';
import type { TimelineChunk, TimelineQuery } from '../rooms/service.js';
import type { RoomActivity } from '../sync/room-activity.js';
import { hasRoomName, roomSummary } from '../sync/room-summary.js';
import { formatSyncToken, type SyncToken } from '../sync/token.js';
import type { SentRoom } from './connection-state.js';
import type { RequiredState, StateMatcher } from './request.js';
import type { ListedRoom } from './room-list.js';

/**
 * Room results of MSC4186 ("Room results"): which of the matched rooms go
 * out (never sent on the connection, news since last sent, or a widened
 * config), and what each carries. Timelines, states and unread counts of
 * all rooms are read in one batch each.
 */

/** A key that left the room's state, as MSC4186's `StateStub` shows it. */
export interface StateStub {
  type: string;
  state_key: string;
}

type StateDelta = { changed: ClientEvent[]; removed: StateStub[] };

export interface RoomPlan {
  room: ListedRoom;
  /** Lists whose window holds the room. */
  lists: string[];
  timelineLimit: number;
  requiredState: RequiredState[];
  /** configSignature(requiredState). */
  sig: string;
  prev: SentRoom | undefined;
}

export interface BuildInput {
  userId: string;
  deviceId: string;
  heads: SyncToken;
  /** Heads of the position the request builds on; null on a new connection. */
  prevHeads: SyncToken | null;
  dmRooms: Set<string>;
  ignored: Set<string>;
}

export interface BuiltRooms {
  rooms: Map<string, JsonObject>;
  /** What the connection has sent of each room after this response. */
  sent: Map<string, SentRoom>;
  /** Rooms sent with a timeline: the position just before its first event (what the timeline covers starts after it). */
  timelineFrom: Map<string, number>;
}

/** State types whose change alters a room's name, avatar, heroes or member counts. */
const SUMMARY_TYPES = ['m.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.member'];

function hit(m: StateMatcher, ev: ClientEvent, userId: string): boolean {
  if (m.type !== null && m.type !== ev.type) return false;
  if (m.stateKey === null) return true;
  return (m.stateKey === '$ME' ? userId : m.stateKey) === ev.state_key;
}

/** Whether any of the combined configs asks for the state event (MSC4186 "Combining room configs"). */
export function wantsState(configs: RequiredState[], ev: ClientEvent, userId: string): boolean {
  return configs.some((c) => c.include.some((m) => hit(m, ev, userId)) && !c.exclude.some((m) => hit(m, ev, userId)));
}

interface Decision {
  plan: RoomPlan;
  initial: boolean;
  expanded: boolean;
  fullState: boolean;
  /** Exclusive lower bound of the timeline read. */
  fromPos: number;
  toPos: number;
}

export class RoomBuilder {
  constructor(
    private readonly ctx: Context,
    private readonly activity: RoomActivity,
  ) {}

  async build(input: BuildInput, plans: RoomPlan[]): Promise<BuiltRooms> {
    const rooms = this.ctx.services.rooms;
    const { heads, userId } = input;
    const viewer = { userId, deviceId: input.deviceId };
    const out: BuiltRooms = { rooms: new Map(), sent: new Map(), timelineFrom: new Map() };

    // Which rooms have news: events after the position each was last sent at.
    const byPrev = new Map<number, string[]>();
    for (const p of plans) {
      if (!p.prev || p.room.m.membership !== 'join') continue;
      const l = byPrev.get(p.prev.pos) ?? [];
      l.push(p.room.roomId);
      byPrev.set(p.prev.pos, l);
    }
    const active = new Set<string>();
    const [, refilled] = await Promise.all([
      Promise.all(
        [...byPrev].map(async ([from, ids]) => {
          for (const r of await this.activity.between(ids, from, heads.events)) active.add(r);
        }),
      ),
      this.refilled(plans, heads.events),
    ]);

    const stripped: RoomPlan[] = [];
    const decisions: Decision[] = [];
    for (const plan of plans) {
      const { m } = plan.room;
      const prev = plan.prev;
      if (m.membership === 'invite' || m.membership === 'knock') {
        if (!prev || m.streamPos > prev.pos) stripped.push(plan);
        continue;
      }
      const toPos = m.membership === 'join' ? heads.events : Math.min(m.streamPos, heads.events);
      // A room whose partial state was filled in since it was sent goes again as new: its state
      // before was rewritten with the members learnt, so no delta shows them, and events the
      // client holds may have been withdrawn (as /sync renders it whole).
      const initial = prev === undefined || refilled.has(m.roomId);
      const expanded = !initial && plan.timelineLimit > prev.limit;
      const widened = !initial && plan.sig !== prev.cfg;
      const news = !initial && (m.membership === 'join' ? active.has(m.roomId) : m.streamPos > prev.pos);
      const dmChanged = !initial && prev.dm !== input.dmRooms.has(m.roomId);
      if (!initial && !expanded && !widened && !news && !dmChanged) continue;
      decisions.push({ plan, initial, expanded, fullState: initial || widened, fromPos: initial || expanded ? 0 : prev.pos, toPos });
    }

    const query = (roomId: string, fromPos: number, toPos: number, limit: number): TimelineQuery => ({ roomId, fromPos, toPos, limit, viewer });
    const withTimeline = decisions.filter((d) => d.plan.timelineLimit > 0 && d.toPos > d.fromPos);
    // Live events: those after the previous response, for rooms whose timeline starts before it.
    const prevEvents = input.prevHeads?.events;
    const liveAsked = prevEvents === undefined ? [] : withTimeline.filter((d) => d.fromPos < prevEvents && d.toPos > prevEvents);
    const fulls = decisions.filter((d) => d.fullState);
    const deltas = decisions.filter((d) => !d.fullState && d.toPos > d.plan.prev!.pos);
    const joinedIds = decisions.filter((d) => d.plan.room.m.membership === 'join').map((d) => d.plan.room.roomId);
    const [timelines, live, states, changes, unread, strippedStates] = await Promise.all([
      rooms.getTimelines(withTimeline.map((d) => query(d.plan.room.roomId, d.fromPos, d.toPos, d.plan.timelineLimit))),
      liveAsked.length > 0
        ? rooms.getTimelines(liveAsked.map((d) => query(d.plan.room.roomId, prevEvents!, d.toPos, d.plan.timelineLimit)))
        : Promise.resolve(new Map<string, TimelineChunk>()),
      fulls.length > 0 ? rooms.getStatesAtPositions(fulls.map((d) => ({ roomId: d.plan.room.roomId, pos: d.toPos }))) : Promise.resolve(new Map<string, ClientEvent[]>()),
      deltas.length > 0
        ? rooms.getStateDeltas(deltas.map((d) => ({ roomId: d.plan.room.roomId, fromPos: d.plan.prev!.pos, toPos: d.toPos })))
        : Promise.resolve(new Map<string, StateDelta>()),
      joinedIds.length > 0 ? this.ctx.services.push.getUnreadCounts(userId, joinedIds) : Promise.resolve(new Map<string, { notification_count: number; highlight_count: number }>()),
      Promise.all(stripped.map((p) => rooms.getStrippedState(p.room.roomId, p.room.m.eventId))),
    ]);

    await Promise.all(
      decisions.map(async (d) => {
        const roomId = d.plan.room.roomId;
        const chunk = timelines.get(roomId) ?? { events: [], limited: d.fromPos === 0 ? false : d.toPos > d.fromPos, prevBatchPos: d.toPos };
        const full = d.fullState ? (states.get(roomId) ?? []) : null;
        const delta = changes.get(roomId);
        const built = await this.joinedRoom(input, d, chunk, live.get(roomId), full, delta?.changed ?? [], delta?.removed ?? []);
        const counts = unread.get(roomId);
        if (counts && d.plan.room.m.membership === 'join') Object.assign(built.body, counts);
        out.rooms.set(roomId, built.body);
        out.sent.set(roomId, built.sent);
        if (d.plan.timelineLimit > 0) out.timelineFrom.set(roomId, chunk.prevBatchPos);
      }),
    );
    stripped.forEach((plan, i) => {
      const key = plan.room.m.membership === 'invite' ? 'invite_state' : 'knock_state';
      const body = this.common(plan, plan.prev === undefined);
      body[key] = strippedStates[i] as unknown as JsonValue;
      body.stripped_state = strippedStates[i] as unknown as JsonValue;
      out.rooms.set(plan.room.roomId, body);
      out.sent.set(plan.room.roomId, { pos: plan.room.m.streamPos, limit: plan.timelineLimit, cfg: plan.sig, members: [], dm: input.dmRooms.has(plan.room.roomId) });
    });
    return out;
  }

  /** Joined rooms sent before whose partial state was filled in after they were last sent. */
  private async refilled(plans: RoomPlan[], upTo: number): Promise<Set<string>> {
    const sent = new Map<string, number>();
    for (const p of plans) if (p.prev && p.room.m.membership === 'join') sent.set(p.room.roomId, p.prev.pos);
    if (sent.size === 0) return new Set();
    const fills = await this.ctx.services.rooms.getStateFillPositions(new Set(sent.keys()), Math.min(...sent.values()), upTo);
    return new Set([...fills].filter(([roomId, pos]) => pos > sent.get(roomId)!).map(([roomId]) => roomId));
  }

  private common(plan: RoomPlan, initial: boolean): JsonObject {
    const body: JsonObject = { membership: plan.room.m.membership, bump_stamp: plan.room.bump };
    if (plan.lists.length > 0) body.lists = plan.lists;
    if (initial) body.initial = true;
    return body;
  }

  private async joinedRoom(
    input: BuildInput,
    d: Decision,
    chunk: TimelineChunk,
    live: TimelineChunk | undefined,
    full: ClientEvent[] | null,
    changes: ClientEvent[],
    removed: StateStub[],
  ): Promise<{ body: JsonObject; sent: SentRoom }> {
    const { userId } = input;
    const { plan } = d;
    const roomId = plan.room.roomId;
    const body = this.common(plan, d.initial);
    const timeline = chunk.events.filter((e) => e.state_key !== undefined || !input.ignored.has(e.sender));
    const lazy = plan.requiredState.some((c) => c.lazyMembers);
    const alreadySent = new Set(d.initial || d.fullState ? [] : (plan.prev?.members ?? []));

    // State: all of it that the config asks for when sent in full, else what changed.
    const source = full ?? changes;
    const state: (ClientEvent | StateStub)[] = source.filter((e) => wantsState(plan.requiredState, e, userId));
    // Keys the state lost (a state reset) go as stubs without content (MSC4186 `StateStub`), if the
    // config asks for them or, with lazy members, the member was sent before.
    const gone = new Set<string>();
    for (const stub of removed) {
      const asked = wantsState(plan.requiredState, stub as ClientEvent, userId);
      const lazyMember = lazy && stub.type === 'm.room.member' && alreadySent.has(stub.state_key);
      if (!asked && !lazyMember) continue;
      state.push({ type: stub.type, state_key: stub.state_key });
      if (stub.type === 'm.room.member') gone.add(stub.state_key);
    }
    const lazySent: string[] = [];
    if (lazy) {
      const needed = new Set<string>();
      for (const e of timeline) {
        needed.add(e.sender);
        if (e.type === 'm.room.member' && e.state_key !== undefined) needed.add(e.state_key);
      }
      const have = new Set(state.filter((e) => e.type === 'm.room.member').map((e) => e.state_key!));
      // Without a gap, every membership change since the last response goes too (MSC4186 lazy members, 3).
      if (!full && !chunk.limited) {
        for (const e of changes) if (e.type === 'm.room.member' && !have.has(e.state_key!)) {
          state.push(e);
          have.add(e.state_key!);
        }
      }
      const missing = [...needed].filter((u) => !have.has(u) && !alreadySent.has(u));
      if (missing.length > 0) {
        const members = full ?? (await this.ctx.services.rooms.getCurrentState(roomId, ['m.room.member']));
        const want = new Set(missing);
        for (const e of members) if (e.type === 'm.room.member' && want.has(e.state_key!)) state.push(e);
      }
      for (const e of state) if (e.type === 'm.room.member' && !gone.has(e.state_key!)) lazySent.push(e.state_key!);
    }
    if (state.length > 0 || d.initial) body.required_state = state as unknown as JsonValue;

    if (plan.timelineLimit > 0) {
      body.timeline = timeline as unknown as JsonValue;
      body.prev_batch = formatSyncToken({ ...input.heads, events: chunk.prevBatchPos });
      if (chunk.limited) body.limited = true;
      const prevEvents = input.prevHeads?.events;
      let numLive = 0;
      if (prevEvents !== undefined) numLive = d.fromPos >= prevEvents ? timeline.length : Math.min(live?.events.length ?? 0, timeline.length);
      body.num_live = numLive;
    }
    if (d.expanded) {
      body.expanded_timeline = true;
      body.unstable_expanded_timeline = true;
    }

    // Name, avatar, heroes and counts: from the full state, or re-read when a change touched them.
    const touched = full === null && [...changes, ...removed].some((e) => SUMMARY_TYPES.includes(e.type));
    const current = full ?? (touched ? await this.ctx.services.rooms.getCurrentState(roomId, SUMMARY_TYPES) : null);
    if (current) this.describe(body, current, userId, d.initial);
    const dm = input.dmRooms.has(roomId);
    if (dm || (plan.prev && plan.prev.dm !== dm)) body.is_dm = dm;

    const members = d.initial || d.fullState ? lazySent : [...new Set([...(plan.prev?.members ?? []), ...lazySent])].filter((u) => !gone.has(u));
    return { body, sent: { pos: d.toPos, limit: plan.timelineLimit, cfg: plan.sig, members, dm } };
  }

  /** `name`, `avatar`, `heroes`, `joined_count` and `invited_count` from the room's state. */
  private describe(body: JsonObject, state: ClientEvent[], userId: string, initial: boolean): void {
    const one = (type: string) => state.find((e) => e.type === type && e.state_key === '');
    const name = one('m.room.name')?.content.name;
    if (typeof name === 'string' && name !== '') body.name = name;
    else if (!initial && one('m.room.name')) body.name = null;
    const avatar = one('m.room.avatar')?.content.url;
    if (typeof avatar === 'string' && avatar !== '') body.avatar = avatar;
    else if (!initial && one('m.room.avatar')) body.avatar = null;
    const summary = roomSummary(state, userId, hasRoomName(state));
    body.joined_count = summary['m.joined_member_count']!;
    body.invited_count = summary['m.invited_member_count']!;
    const heroes = summary['m.heroes'] as string[] | undefined;
    if (heroes && heroes.length > 0) {
      body.heroes = heroes.map((u) => {
        const ev = state.find((e) => e.type === 'm.room.member' && e.state_key === u);
        const hero: JsonObject = { user_id: u };
        if (typeof ev?.content.displayname === 'string') hero.displayname = ev.content.displayname;
        if (typeof ev?.content.avatar_url === 'string') hero.avatar_url = ev.content.avatar_url;
        return hero;
      });
    }
  }
}
