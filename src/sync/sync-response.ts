import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';
import type { ClientEvent, JsonObject, JsonValue } from '../core/types.js';
import { readStreamPositions } from '../db/stream-positions.js';
import type { RoomMembership, TimelineChunk } from '../rooms/service.js';
import type { AccountData, AccountDataChange } from './account-data.js';
import { projectFields, type CompiledFilter } from './filter-rules.js';
import { orDefault } from './guard.js';
import type { Presence } from './presence.js';
import type { Receipts } from './receipts.js';
import { ReadGate } from './read-gate.js';
import { RoomActivity } from './room-activity.js';
import { hasRoomName, roomSummary } from './room-summary.js';
import { clampToken, formatSyncToken, type SyncToken } from './token.js';
import type { TypingTracker } from './typing.js';

export interface SyncParams {
  userId: string;
  deviceId: string;
  since: SyncToken | null;
  filter: CompiledFilter;
  fullState: boolean;
  useStateAfter: boolean;
}

export interface SyncResult {
  body: JsonObject;
  /** Nothing for the client: a long-poll should keep waiting. */
  empty: boolean;
  /** The stream heads this response covers. */
  heads: SyncToken;
  /** Rooms whose events, receipts and typing concern this user (the notifier's index). */
  rooms: string[];
}

const TO_DEVICE_LIMIT = 100;
/** Per-user reads let through at once on SQLite (read-gate.ts). */
const SQLITE_READS_AT_ONCE = 2;

type UnreadCounts = Map<string, { notification_count: number; highlight_count: number }>;

/** How a joined room is rendered: `full` state (initial sync, new join, full_state) or a `delta` since the token. */
type JoinMode = 'full' | 'delta';

interface JoinPlan {
  roomId: string;
  mode: JoinMode;
  /** Exclusive lower bound of the timeline. */
  timelineFrom: number;
  /** The user joined since the token (lazy loading must include their own member event). */
  newlyJoined: boolean;
}

interface LeavePlan {
  roomId: string;
  m: RoomMembership;
  /** Exclusive lower bound of the timeline; null: only the leave event (the user never saw the room). */
  timelineFrom: number | null;
}

/** Shared inputs of one computation. */
interface Run {
  p: SyncParams;
  heads: SyncToken;
  since: SyncToken | null;
  ignored: Set<string>;
  typing: Map<string, string[]>;
  receipts: Map<string, JsonObject>;
  roomAccountData: Map<string, AccountDataChange[]>;
  roomsWithEvents: Set<string>;
  /** Rooms whose member changes matter for device_lists (filled while rooms are built). */
  memberChanges: Map<string, ClientEvent[]>;
}

/**
 * Builds one /sync response (spec: "Syncing", GET /sync) for the stream
 * heads read at its start. Every per-room read goes out concurrently.
 */
export class SyncResponder {
  /** Memberships of a user as of an events position: valid for any request at that same position. */
  private readonly memberships = boundedCache<string, { pos: number; map: Map<string, RoomMembership> }>(10000);
  /** Lazy loading: which members' events each device already has, per room (spec: "redundant membership events"). */
  private readonly knownMembers = boundedCache<string, Set<string>>(50000);
  /** The joined rooms each user had at their last sync: a guess that lets reads run side by side. */
  private readonly lastJoined = boundedCache<string, string[]>(10000);
  /** Which rooms had events in a range: one read for the syncs that ask together. */
  private readonly activity: RoomActivity;
  /** The reads each sync makes for its own user and device, a few at a time. */
  private readonly gate: ReadGate;

  constructor(
    private readonly ctx: Context,
    private readonly parts: { typing: TypingTracker; receipts: Receipts; accountData: AccountData; presence: Presence },
  ) {
    this.activity = new RoomActivity((roomIds, fromPos, toPos) => this.rooms.getRoomsWithEventsBetween(roomIds, fromPos, toPos));
    this.gate = new ReadGate(ctx.dialect === 'sqlite' ? SQLITE_READS_AT_ONCE : ctx.config.database.pool_size);
  }

  private get rooms() {
    return this.ctx.services.rooms;
  }

  /**
   * `knownHeads`: positions already known to be committed (from the bus),
   * used after a wake-up to save a read; otherwise the heads are read.
   * `eventRooms`: rooms whose new events woke the request (a hint: their
   * timelines are read early, alongside the membership reads).
   */
  async build(p: SyncParams, knownHeads?: SyncToken, eventRooms: string[] = []): Promise<SyncResult> {
    const heads = knownHeads ?? (await readStreamPositions(this.ctx.db));
    const since = p.since ? clampToken(p.since, heads) : null;
    const { userId, filter } = p;
    const incremental = since !== null;

    // Which rooms had events is asked with the rooms the user was last seen in, alongside the
    // membership read; rooms that turn out to be new to the list are asked about afterwards.
    const guess = since && since.events < heads.events ? this.lastJoined.get(userId) : undefined;
    // Rules nobody edited yet live only in push: clients expect them in the initial sync.
    const pushRules = incremental
      ? Promise.resolve(null)
      : this.parts.accountData.pushRules(userId).catch((err: unknown) => {
          this.ctx.logger.warn({ err }, 'push rules for the initial sync failed');
          return null;
        });
    // Reads that depend on nothing below start now, so that they overlap with the room reads.
    const deviceReads = Promise.all([
      this.presence(userId, since, heads, filter),
      since === null || since.to_device < heads.to_device
        ? orDefault(
            this.ctx.services.e2ee.getToDevice(userId, p.deviceId, since?.to_device ?? 0, heads.to_device, TO_DEVICE_LIMIT),
            { events: [], nextPos: heads.to_device },
          )
        : Promise.resolve({ events: [], nextPos: heads.to_device }),
      orDefault(this.gate.run(() => this.ctx.services.e2ee.getOneTimeKeyCounts(userId, p.deviceId)), {} as Record<string, number>),
      orDefault(this.gate.run(() => this.ctx.services.e2ee.getUnusedFallbackKeyTypes(userId, p.deviceId)), [] as string[]),
    ]);
    // Awaited below; a failure before that must not go unhandled.
    deviceReads.catch(() => {});
    // A wake-up names the rooms with new events: if the user was in them at the last sync, their
    // timelines and unread counts are read now, and used if the rooms are rendered as expected.
    const guessed = new Set(guess ?? []);
    const hinted = eventRooms.filter((r) => guessed.has(r) && filter.allowsRoom(r));
    const early = hinted.length > 0 ? this.earlyRoomReads(p, since!, heads, hinted) : null;
    early?.catch(() => {});
    const [at, ignored, accountChanges, guessedActivity] = await Promise.all([
      this.membershipsAt(userId, heads.events),
      this.parts.accountData.ignoredUsers(userId),
      this.parts.accountData.changes(userId, since?.account_data ?? 0, heads.account_data),
      guess && guess.length > 0
        ? this.activity.between(guess, since!.events, heads.events)
        : Promise.resolve(new Set<string>()),
    ]);

    // Membership transitions since the token, and what each room was before them. A room whose
    // latest membership event is not after the token had none in between.
    const windowChanges = new Map<string, RoomMembership[]>();
    let before = new Map<string, RoomMembership>();
    if (since && [...at.values()].some((m) => m.streamPos > since.events)) {
      const list = await this.rooms.getMembershipChanges(userId, since.events, heads.events);
      for (const m of list.sort((a, b) => a.streamPos - b.streamPos)) {
        let l = windowChanges.get(m.roomId);
        if (!l) windowChanges.set(m.roomId, (l = []));
        l.push(m);
      }
      if (windowChanges.size > 0) before = latestPerRoom(await this.rooms.getMembershipChanges(userId, 0, since.events));
    }

    const joinedAll: string[] = [];
    for (const m of at.values()) if (m.membership === 'join') joinedAll.push(m.roomId);
    this.lastJoined.set(userId, joinedAll);
    const joined = joinedAll.filter((r) => filter.allowsRoom(r));

    // Which joined rooms to render and how.
    const joinPlans: JoinPlan[] = [];
    const invites: RoomMembership[] = [];
    const knocks: RoomMembership[] = [];
    const leaves: LeavePlan[] = [];
    const full = !incremental || p.fullState;
    for (const m of at.values()) {
      if (!filter.allowsRoom(m.roomId)) continue;
      const changes = windowChanges.get(m.roomId);
      const was = before.get(m.roomId)?.membership;
      switch (m.membership) {
        case 'join': {
          const newlyJoined = incremental && changes !== undefined && (was !== 'join' || changes.some((c) => c.membership !== 'join'));
          if (!incremental) joinPlans.push({ roomId: m.roomId, mode: 'full', timelineFrom: 0, newlyJoined: false });
          else if (newlyJoined) joinPlans.push({ roomId: m.roomId, mode: 'full', timelineFrom: 0, newlyJoined: true });
          else if (p.fullState) joinPlans.push({ roomId: m.roomId, mode: 'full', timelineFrom: since.events, newlyJoined: false });
          else joinPlans.push({ roomId: m.roomId, mode: 'delta', timelineFrom: since.events, newlyJoined: false });
          break;
        }
        case 'invite':
          if (full || changes) invites.push(m);
          break;
        case 'knock':
          if (full || changes) knocks.push(m);
          break;
        case 'leave':
        case 'ban':
          if (changes) {
            const sawRoom = was === 'join' || changes.some((c) => c.membership === 'join');
            leaves.push({ roomId: m.roomId, m, timelineFrom: sawRoom ? since!.events : null });
          } else if (full && filter.includeLeave) {
            leaves.push({ roomId: m.roomId, m, timelineFrom: 0 });
          }
          break;
      }
    }

    // Batched reads for every joined room at once.
    const unguessed = joined.filter((r) => !guessed.has(r));
    const [moreActivity, receipts] = await Promise.all([
      since && since.events < heads.events && unguessed.length > 0
        ? this.activity.between(unguessed, since.events, heads.events)
        : Promise.resolve(new Set<string>()),
      this.parts.receipts.changes(joined, since?.receipts ?? 0, heads.receipts, userId),
    ]);
    const roomsWithEvents = new Set([...guessedActivity, ...moreActivity]);
    const typing = this.parts.typing.changedSince(joined, since ? since.typing : null);
    const roomAccountData = new Map<string, AccountDataChange[]>();
    const globalAccountData: AccountDataChange[] = [];
    for (const c of accountChanges) {
      if (c.roomId === null) globalAccountData.push(c);
      else {
        let l = roomAccountData.get(c.roomId);
        if (!l) roomAccountData.set(c.roomId, (l = []));
        l.push(c);
      }
    }

    // In an incremental sync a joined room is only rendered when something happened in it.
    const renderedJoins = joinPlans.filter(
      (j) =>
        j.mode === 'full' ||
        roomsWithEvents.has(j.roomId) ||
        typing.has(j.roomId) ||
        receipts.has(j.roomId) ||
        roomAccountData.has(j.roomId),
    );
    const run: Run = { p, heads, since, ignored, typing, receipts, roomAccountData, roomsWithEvents, memberChanges: new Map() };

    const earlyReads = early ? await early : null;
    const [unread, joinEntries, inviteEntries, knockEntries, leaveEntries, [presence, toDevice, otk, fallback]] = await Promise.all([
      this.unreadCounts(userId, renderedJoins, earlyReads?.unread),
      this.joinedRooms(run, renderedJoins, earlyReads?.timelines),
      Promise.all(invites.map((m) => this.strippedRoom(run, m, 'invite_state'))),
      Promise.all(knocks.map((m) => this.strippedRoom(run, m, 'knock_state'))),
      this.leftRooms(run, leaves),
      deviceReads,
    ]);

    const deviceLists = since ? await this.deviceLists(run, joinPlans, leaves) : null;

    const rooms: JsonObject = { join: {}, invite: {}, leave: {}, knock: {} };
    let roomCount = 0;
    const put = (section: string, entries: Array<[string, JsonObject] | null>) => {
      for (const e of entries) {
        if (!e) continue;
        (rooms[section] as JsonObject)[e[0]] = e[1];
        roomCount++;
      }
    };
    for (const e of joinEntries) {
      if (e) e[1].unread_notifications = unread.get(e[0]) ?? { notification_count: 0, highlight_count: 0 };
    }
    put('join', joinEntries);
    put('invite', inviteEntries);
    put('knock', knockEntries);
    put('leave', leaveEntries);

    const rules = await pushRules;
    if (rules && !globalAccountData.some((c) => c.type === 'm.push_rules')) {
      globalAccountData.push({ roomId: null, type: 'm.push_rules', content: rules });
    }
    const accountData = globalAccountData
      .map((c) => ({ type: c.type, content: c.content }))
      .filter((e) => filter.accountData.matches(e));

    const body: JsonObject = {
      next_batch: formatSyncToken({ ...heads, to_device: toDevice.nextPos }),
      rooms,
      account_data: { events: this.fields(limitList(accountData, filter.accountData.limit), filter) },
      presence: { events: this.fields(presence, filter) },
      to_device: { events: toDevice.events },
      device_one_time_keys_count: otk,
      device_unused_fallback_key_types: fallback,
    };
    if (deviceLists) body.device_lists = { changed: [...deviceLists.changed], left: [...deviceLists.left] };

    const empty =
      roomCount === 0 &&
      accountData.length === 0 &&
      presence.length === 0 &&
      toDevice.events.length === 0 &&
      (!deviceLists || (deviceLists.changed.size === 0 && deviceLists.left.size === 0));
    // Events in invited rooms do not concern the user; membership events for them carry the user id.
    return { body, empty, heads, rooms: joined };
  }

  /** Timelines from the sync token, and unread counts, of rooms a wake-up named. */
  private async earlyRoomReads(p: SyncParams, since: SyncToken, heads: SyncToken, roomIds: string[]): Promise<{ timelines: Map<string, TimelineChunk>; unread: UnreadCounts }> {
    const { filter, userId } = p;
    const viewer = { userId, deviceId: p.deviceId };
    const [timelines, unread] = await Promise.all([
      this.rooms.getTimelines(
        roomIds
          .filter((r) => filter.timeline.allowsRoom(r))
          .map((roomId) => ({ roomId, fromPos: since.events, toPos: heads.events, limit: filter.timelineLimit, filter: filter.timeline.lists, viewer })),
      ),
      this.unreadCounts(userId, roomIds.map((roomId) => ({ roomId }))),
    ]);
    return { timelines, unread };
  }

  /** Unread counts of the rooms, those already read (`known`) included. */
  private async unreadCounts(userId: string, rooms: { roomId: string }[], known?: UnreadCounts): Promise<UnreadCounts> {
    const missing = rooms.map((r) => r.roomId).filter((r) => !known?.has(r));
    if (missing.length === 0) return known ?? new Map();
    const counts = await orDefault(this.gate.run(() => this.ctx.services.push.getUnreadCounts(userId, missing)), new Map() as UnreadCounts);
    if (known) for (const [r, c] of known) if (!counts.has(r)) counts.set(r, c);
    return counts;
  }

  // ---- memberships ----

  private async membershipsAt(userId: string, pos: number): Promise<Map<string, RoomMembership>> {
    const hit = this.memberships.get(userId);
    if (hit && hit.pos === pos) return hit.map;
    const list = await this.gate.run(() => this.rooms.getMemberships(userId));
    let map: Map<string, RoomMembership>;
    if (list.some((m) => m.streamPos > pos)) {
      // A membership changed after the heads were read: rebuild the memberships as of `pos`.
      map = latestPerRoom(await this.rooms.getMembershipChanges(userId, 0, pos));
    } else {
      map = new Map(list.map((m) => [m.roomId, m]));
    }
    this.memberships.set(userId, { pos, map });
    return map;
  }

  // ---- joined rooms ----

  /**
   * Every rendered joined room: the timelines of all of them in one batch,
   * then the full state of those rendered in full in another.
   */
  private async joinedRooms(run: Run, plans: JoinPlan[], early?: Map<string, TimelineChunk>): Promise<Array<[string, JsonObject] | null>> {
    const { p, heads, since } = run;
    const { filter, userId } = p;
    const viewer = { userId, deviceId: p.deviceId };
    const wanted = plans.filter((j) => (j.mode === 'full' || run.roomsWithEvents.has(j.roomId)) && filter.timeline.allowsRoom(j.roomId));
    // Timelines read early were read from the sync token: they serve the rooms whose timeline starts there.
    const reuse = (j: JoinPlan) => early !== undefined && since !== null && j.timelineFrom === since.events && early.has(j.roomId);
    const queries = wanted
      .filter((j) => !reuse(j))
      .map((j) => ({
        roomId: j.roomId,
        fromPos: j.timelineFrom,
        toPos: heads.events,
        limit: filter.timelineLimit,
        filter: filter.timeline.lists,
        viewer,
      }));
    const chunks = queries.length > 0 ? await this.rooms.getTimelines(queries) : new Map<string, TimelineChunk>();
    for (const j of wanted) if (reuse(j)) chunks.set(j.roomId, early!.get(j.roomId)!);
    const chunkOf = (roomId: string): TimelineChunk => chunks.get(roomId) ?? { events: [], limited: false, prevBatchPos: heads.events };
    // The full state of rooms rendered in full, and the state changes of the others, in one batch each.
    const full = plans.filter((j) => j.mode === 'full');
    const deltas: { roomId: string; fromPos: number; toPos: number }[] = [];
    for (const j of plans) {
      const range = j.mode === 'delta' ? this.deltaStateRange(run, j, chunkOf(j.roomId)) : null;
      if (range) deltas.push({ roomId: j.roomId, ...range });
    }
    const [states, changes] = await Promise.all([
      full.length > 0
        ? this.rooms.getStatesAtPositions(full.map((j) => ({ roomId: j.roomId, pos: p.useStateAfter ? heads.events : chunkOf(j.roomId).prevBatchPos })))
        : new Map<string, ClientEvent[]>(),
      deltas.length > 0 ? this.rooms.getStateChanges(deltas) : new Map<string, ClientEvent[]>(),
    ]);
    return Promise.all(plans.map((j) => this.joinedRoom(run, j, chunkOf(j.roomId), (j.mode === 'full' ? states : changes).get(j.roomId) ?? [])));
  }

  /**
   * The state section of a room rendered as a delta: the state changes from
   * the token to the start of the timeline when the timeline does not hold
   * them all (limited or filtered), or to its end with `use_state_after`.
   */
  private deltaStateRange(run: Run, j: JoinPlan, chunk: TimelineChunk): { fromPos: number; toPos: number } | null {
    const sincePos = run.since!.events;
    if (!run.roomsWithEvents.has(j.roomId)) return null;
    if (run.p.useStateAfter) return { fromPos: sincePos, toPos: run.heads.events };
    if ((chunk.limited || run.p.filter.timeline.restrictsEvents) && chunk.prevBatchPos > sincePos) return { fromPos: sincePos, toPos: chunk.prevBatchPos };
    return null;
  }

  /**
   * One joined room, from its timeline and its state: for a room rendered in
   * full, the state at the start of the timeline (at its end with
   * `use_state_after`); otherwise the changes deltaStateRange asks for.
   */
  private async joinedRoom(run: Run, j: JoinPlan, chunk: TimelineChunk, stateRead: ClientEvent[]): Promise<[string, JsonObject] | null> {
    const { p, heads } = run;
    const { filter, userId } = p;
    const roomId = j.roomId;
    const timeline = this.visibleTimeline(chunk.events, run.ignored, filter);

    // State: before the timeline (`state`) or after it (`state_after`).
    let state: ClientEvent[];
    let summary: JsonObject | undefined;
    const endPos = heads.events;
    if (j.mode === 'full') {
      const full = stateRead;
      const endState = p.useStateAfter ? full : applyState(full, chunk.events);
      summary = roomSummary(endState, userId, hasRoomName(endState));
      state = full;
      if (filter.lazyLoadMembers) {
        const needed = new Set<string>(timeline.map((e) => e.sender));
        needed.add(userId);
        for (const h of (summary['m.heroes'] as string[] | undefined) ?? []) needed.add(h);
        state = state.filter((e) => e.type !== 'm.room.member' || needed.has(e.state_key!));
        this.knownMembers.set(this.knownKey(p, roomId), new Set([...memberKeys(state), ...memberKeys(chunk.events)]));
      }
    } else {
      state = stateRead;
      if (filter.lazyLoadMembers && timeline.length > 0) {
        state = await this.addLazyMembers(p, roomId, state, timeline, chunk, p.useStateAfter ? endPos : chunk.prevBatchPos);
      }
      const memberEvents = [...state, ...chunk.events].filter((e) => e.type === 'm.room.member');
      if (memberEvents.length > 0) {
        run.memberChanges.set(roomId, memberEvents);
        const members = await this.rooms.getCurrentState(roomId, ['m.room.member']);
        summary = roomSummary(members, userId, false);
      }
    }
    if (!filter.state.allowsRoom(roomId)) state = [];
    state = state.filter((e) => filter.state.matches(e));

    const ephemeral: JsonObject[] = [];
    if (filter.ephemeral.allowsRoom(roomId)) {
      const typists = run.typing.get(roomId);
      if (typists) ephemeral.push({ type: 'm.typing', content: { user_ids: typists } });
      const receipt = run.receipts.get(roomId);
      if (receipt) ephemeral.push({ type: 'm.receipt', content: receipt });
    }
    const ephemeralEvents = limitList(
      ephemeral.filter((e) => filter.ephemeral.matches(e as { type: string })),
      filter.ephemeral.limit,
    );
    const accountData = this.roomAccountData(run, roomId);

    if (
      j.mode === 'delta' &&
      timeline.length === 0 &&
      state.length === 0 &&
      ephemeralEvents.length === 0 &&
      accountData.length === 0
    ) {
      return null;
    }

    const entry: JsonObject = {
      timeline: {
        events: asJson(this.fields(timeline.map(withoutRoomId), filter)),
        limited: chunk.limited,
        prev_batch: formatSyncToken({ ...heads, events: chunk.prevBatchPos }),
      },
      [p.useStateAfter ? 'state_after' : 'state']: { events: asJson(this.fields(state.map(withoutRoomId), filter)) },
      ephemeral: { events: ephemeralEvents as JsonValue[] },
      account_data: { events: accountData },
    };
    if (summary) entry.summary = summary;
    return [roomId, entry];
  }

  /** Lazy loading in an incremental sync: member events of timeline senders the device does not have yet. */
  private async addLazyMembers(
    p: SyncParams,
    roomId: string,
    state: ClientEvent[],
    timeline: ClientEvent[],
    chunk: TimelineChunk,
    statePos: number,
  ): Promise<ClientEvent[]> {
    const key = this.knownKey(p, roomId);
    const known = p.filter.includeRedundantMembers ? new Set<string>() : (this.knownMembers.get(key) ?? new Set<string>());
    const have = new Set([...memberKeys(state), ...memberKeys(chunk.events)]);
    const missing = [...new Set(timeline.map((e) => e.sender))].filter((u) => !known.has(u) && !have.has(u));
    let out = state;
    if (missing.length > 0) {
      const want = new Set(missing);
      const snapshot = await this.rooms.getStateAtPosition(roomId, statePos);
      const add = snapshot.filter((e) => e.type === 'm.room.member' && want.has(e.state_key!));
      out = [...state, ...add];
    }
    const next = this.knownMembers.get(key) ?? new Set<string>();
    for (const u of memberKeys(out)) next.add(u);
    for (const u of memberKeys(chunk.events)) next.add(u);
    this.knownMembers.set(key, next);
    return out;
  }

  private knownKey(p: SyncParams, roomId: string): string {
    return `${p.userId}\u0000${p.deviceId}\u0000${roomId}`;
  }

  /** Events of ignored users leave the timeline, state events excepted (spec: "Ignoring Users"). */
  private visibleTimeline(events: ClientEvent[], ignored: Set<string>, filter: CompiledFilter): ClientEvent[] {
    return events.filter(
      (e) => (e.state_key !== undefined || !ignored.has(e.sender)) && filter.timeline.matches(e),
    );
  }

  private roomAccountData(run: Run, roomId: string): JsonObject[] {
    const f = run.p.filter.roomAccountData;
    if (!f.allowsRoom(roomId)) return [];
    const list = (run.roomAccountData.get(roomId) ?? [])
      .map((c) => ({ type: c.type, content: c.content }))
      .filter((e) => f.matches(e));
    return limitList(list, f.limit);
  }

  // ---- invited, knocked and left rooms ----

  private async strippedRoom(run: Run, m: RoomMembership, key: 'invite_state' | 'knock_state'): Promise<[string, JsonObject] | null> {
    const events = await this.rooms.getStrippedState(m.roomId, m.eventId);
    if (key === 'invite_state') {
      const invite = events.find((e) => e.type === 'm.room.member' && e.state_key === run.p.userId);
      if (invite && run.ignored.has(invite.sender)) return null;
    }
    return [m.roomId, { [key]: { events: events as unknown as JsonValue[] } }];
  }

  /** Left rooms: their timelines, and then their states, in one batch each. */
  private async leftRooms(run: Run, leaves: LeavePlan[]): Promise<Array<[string, JsonObject] | null>> {
    if (leaves.length === 0) return [];
    const { p } = run;
    const { filter, userId } = p;
    const viewer = { userId, deviceId: p.deviceId };
    const unseen = leaves.filter((l) => l.timelineFrom === null);
    const seen = leaves.filter((l) => l.timelineFrom !== null);
    const [leaveEvents, chunks] = await Promise.all([
      unseen.length > 0 ? this.rooms.getEvents(unseen.map((l) => l.m.eventId), viewer) : new Map<string, ClientEvent>(),
      seen.length > 0
        ? this.rooms.getTimelines(
            seen.map((l) => ({
              roomId: l.roomId,
              fromPos: l.timelineFrom!,
              toPos: l.m.streamPos,
              limit: filter.timelineLimit,
              filter: filter.timeline.lists,
              viewer,
            })),
          )
        : new Map<string, TimelineChunk>(),
    ]);
    const chunkOf = (l: LeavePlan): TimelineChunk => chunks.get(l.roomId) ?? { events: [], limited: false, prevBatchPos: l.m.streamPos };
    // State at the start of the timeline (at the leave with use_state_after): all of it for rooms
    // rendered from their start, what changed since the token for the others.
    const statePos = (l: LeavePlan) => (p.useStateAfter ? l.m.streamPos : chunkOf(l).prevBatchPos);
    const fromStart = seen.filter((l) => l.timelineFrom === 0);
    const changed = seen.filter(
      (l) => l.timelineFrom !== 0 && (p.useStateAfter || chunkOf(l).limited || filter.timeline.restrictsEvents) && statePos(l) > l.timelineFrom!,
    );
    const [states, changes] = await Promise.all([
      fromStart.length > 0 ? this.rooms.getStatesAtPositions(fromStart.map((l) => ({ roomId: l.roomId, pos: statePos(l) }))) : new Map<string, ClientEvent[]>(),
      changed.length > 0
        ? this.rooms.getStateChanges(changed.map((l) => ({ roomId: l.roomId, fromPos: l.timelineFrom!, toPos: statePos(l) })))
        : new Map<string, ClientEvent[]>(),
    ]);
    return leaves.map((l) => {
      let chunk: TimelineChunk;
      let state: ClientEvent[] = [];
      if (l.timelineFrom === null) {
        const ev = leaveEvents.get(l.m.eventId);
        chunk = { events: ev ? [ev] : [], limited: false, prevBatchPos: l.m.streamPos - 1 };
        if (p.useStateAfter && ev) state = [ev];
      } else {
        chunk = chunkOf(l);
        state = (l.timelineFrom === 0 ? states : changes).get(l.roomId) ?? [];
      }
      return this.leftRoom(run, l, chunk, state);
    });
  }

  private leftRoom(run: Run, l: LeavePlan, chunk: TimelineChunk, stateRead: ClientEvent[]): [string, JsonObject] {
    const { p, since } = run;
    const { filter, userId } = p;
    let state = stateRead;
    if (since && l.timelineFrom !== null && l.timelineFrom !== 0) {
      const members = [...state, ...chunk.events].filter((e) => e.type === 'm.room.member');
      if (members.length > 0) run.memberChanges.set(l.roomId, members);
    }
    if (filter.lazyLoadMembers) {
      const needed = new Set(chunk.events.map((e) => e.sender));
      needed.add(userId);
      state = state.filter((e) => e.type !== 'm.room.member' || needed.has(e.state_key!));
    }
    if (!filter.state.allowsRoom(l.roomId)) state = [];
    state = state.filter((e) => filter.state.matches(e));
    const timeline = this.visibleTimeline(chunk.events, run.ignored, filter);
    return [
      l.roomId,
      {
        timeline: {
          events: asJson(this.fields(timeline.map(withoutRoomId), filter)),
          limited: chunk.limited,
          prev_batch: formatSyncToken({ ...run.heads, events: chunk.prevBatchPos }),
        },
        [p.useStateAfter ? 'state_after' : 'state']: { events: asJson(this.fields(state.map(withoutRoomId), filter)) },
        account_data: { events: this.roomAccountData(run, l.roomId) },
      },
    ];
  }

  // ---- presence and device lists ----

  private async presence(userId: string, since: SyncToken | null, heads: SyncToken, filter: CompiledFilter): Promise<JsonObject[]> {
    const presence = this.parts.presence;
    if (!presence.enabled) return [];
    const fromPos = since?.presence ?? 0;
    if (fromPos >= heads.presence) return [];
    const sharing = await this.rooms.getUsersSharingRooms(userId);
    const rows = await presence.changes([...sharing], fromPos, heads.presence);
    const events = rows
      .map((r) => ({ type: 'm.presence', sender: r.user_id, content: presence.content(r) }))
      .filter((e) => filter.presence.matches(e));
    return limitList(events, filter.presence.limit);
  }

  /**
   * `device_lists` (spec: E2E "Extensions to /sync"): users whose devices
   * changed among those sharing a room, users who newly share a room, and
   * users who no longer share any.
   */
  private async deviceLists(
    run: Run,
    joinPlans: JoinPlan[],
    leaves: LeavePlan[],
  ): Promise<{ changed: Set<string>; left: Set<string> }> {
    const { p, since, heads } = run;
    const userId = p.userId;
    const changed = new Set<string>();
    const gone = new Set<string>();
    const newJoins = joinPlans.filter((j) => j.newlyJoined);
    const leftRooms = leaves.filter((l) => l.timelineFrom !== null);
    const needSharing =
      since!.device_lists < heads.device_lists || run.memberChanges.size > 0 || newJoins.length > 0 || leftRooms.length > 0;
    if (!needSharing) return { changed, left: gone };

    const sharing = await this.rooms.getUsersSharingRooms(userId);
    const [deviceChanges, joinedMembers, leftMembers] = await Promise.all([
      since!.device_lists < heads.device_lists
        ? orDefault(this.ctx.services.e2ee.getDeviceListChanges(since!.device_lists, heads.device_lists, sharing), new Set<string>())
        : Promise.resolve(new Set<string>()),
      Promise.all(newJoins.map((j) => this.rooms.getJoinedMembers(j.roomId))),
      Promise.all(leftRooms.map((l) => this.rooms.getJoinedMembers(l.roomId))),
    ]);
    for (const u of deviceChanges) changed.add(u);
    for (const list of joinedMembers) for (const u of list) changed.add(u);
    for (const list of leftMembers) for (const u of list) if (!sharing.has(u)) gone.add(u);
    for (const events of run.memberChanges.values()) {
      for (const e of events) {
        const target = e.state_key!;
        if (e.content.membership === 'join') {
          if (sharing.has(target)) changed.add(target);
        } else if (!sharing.has(target)) gone.add(target);
      }
    }
    for (const u of gone) changed.delete(u);
    gone.delete(userId);
    return { changed, left: gone };
  }

  private fields<T extends object>(events: T[], filter: CompiledFilter): T[] {
    return filter.eventFields ? events.map((e) => projectFields(e, filter.eventFields)) : events;
  }
}

function latestPerRoom(list: RoomMembership[]): Map<string, RoomMembership> {
  const map = new Map<string, RoomMembership>();
  for (const m of [...list].sort((a, b) => a.streamPos - b.streamPos)) map.set(m.roomId, m);
  return map;
}

/** State after applying the state events of a timeline to the state before it. */
function applyState(state: ClientEvent[], timeline: ClientEvent[]): ClientEvent[] {
  const map = new Map<string, ClientEvent>();
  for (const e of state) map.set(`${e.type}\u0000${e.state_key}`, e);
  for (const e of timeline) if (e.state_key !== undefined) map.set(`${e.type}\u0000${e.state_key}`, e);
  return [...map.values()];
}

function memberKeys(events: ClientEvent[]): string[] {
  return events.filter((e) => e.type === 'm.room.member' && e.state_key !== undefined).map((e) => e.state_key!);
}

function withoutRoomId(e: ClientEvent): ClientEvent {
  if (e.room_id === undefined) return e;
  const { room_id: _drop, ...rest } = e;
  return rest;
}

function asJson(events: object[]): JsonValue[] {
  return events as unknown as JsonValue[];
}

function limitList<T>(list: T[], limit: number | undefined): T[] {
  return limit === undefined ? list : list.slice(0, limit);
}
