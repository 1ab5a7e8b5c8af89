import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import { readStreamPositions } from '../db/stream-positions.js';
import type { RoomMembership, TimelineChunk } from '../rooms/service.js';
import type { AccountData, AccountDataChange } from './account-data.js';
import { deviceLists, presenceSection } from './device-lists.js';
import { GatheredReads } from './gathered-reads.js';
import { orDefault } from './guard.js';
import { JoinedRooms, type RoomEntry } from './joined-rooms.js';
import { leftRooms, strippedRoom } from './other-rooms.js';
import type { Presence } from './presence.js';
import type { Receipts } from './receipts.js';
import { ReadGate } from './read-gate.js';
import { RoomActivity } from './room-activity.js';
import { fields, latestPerRoom, limitList, SYNC_SHAPE, type JoinPlan, type LeavePlan, type Run, type SyncParams, type UnreadCounts } from './sync-run.js';
import { entriesJson, SharedJson, type JsonPiece } from './sync-stream.js';
import { clampToken, formatSyncToken, type SyncToken } from './token.js';
import type { TypingTracker } from './typing.js';

export type { SyncParams } from './sync-run.js';

export interface SyncResult {
  body: JsonObject;
  /** Nothing for the client: a long-poll should keep waiting. */
  empty: boolean;
  /** The stream heads this response covers. */
  heads: SyncToken;
  /** Rooms whose events, receipts and typing concern this user (the notifier's index). */
  rooms: string[];
  /**
   * With `stream`, for an initial sync with more than STREAMED_ABOVE_ROOMS
   * joined rooms: `body.rooms.join` is left empty and these are its members
   * as JSON text, made while they are read (sync-stream.ts writes them into
   * the answer).
   */
  joined?: AsyncIterable<JsonPiece>;
}

const TO_DEVICE_LIMIT = 100;
/** Per-user reads let through at once on SQLite (read-gate.ts). */
const SQLITE_READS_AT_ONCE = 2;
/**
 * Joined rooms rendered per batch: one read of timelines, states and unread
 * counts each. Large enough that a usual account is one batch, small enough
 * that a batch's events are a few MB at most.
 */
export const ROOMS_PER_BATCH = 100;
/**
 * An initial sync with more joined rooms than this is written as it is made
 * (`stream` below); a smaller one is about a piece of text (PIECE_BYTES),
 * sent with its length.
 */
export const STREAMED_ABOVE_ROOMS = 10;

/**
 * Builds one /sync response (spec: "Syncing", GET /sync) for the stream
 * heads read at its start. Reads for the user go out concurrently; joined
 * rooms are read and rendered a batch at a time (joined-rooms.ts).
 */
export class SyncResponder {
  /** Memberships of a user as of an events position: valid for any request at that same position. */
  private readonly memberships = boundedCache<string, { pos: number; map: Map<string, RoomMembership> }>(10000);
  /** The joined rooms each user had at their last sync: a guess that lets reads run side by side. */
  private readonly lastJoined = boundedCache<string, string[]>(10000);
  /** Which rooms had events in a range: one read for the syncs that ask together. */
  private readonly activity: RoomActivity;
  /** The reads each sync makes for its own user and device, gathered across the syncs that ask together. */
  private readonly gathered: GatheredReads;
  private readonly joinedRooms: JoinedRooms;
  /** Streamed renderings of joined rooms under way, by device, filter, options and heads: shared by the identical requests that arrive while one runs. */
  private readonly renders = new Map<string, SharedJson>();

  constructor(
    private readonly ctx: Context,
    private readonly parts: { typing: TypingTracker; receipts: Receipts; accountData: AccountData; presence: Presence },
  ) {
    this.activity = new RoomActivity((roomIds, fromPos, toPos) => this.rooms.getRoomsWithEventsBetween(roomIds, fromPos, toPos));
    this.gathered = new GatheredReads(ctx, new ReadGate(ctx.dialect === 'sqlite' ? SQLITE_READS_AT_ONCE : ctx.config.database.pool_size));
    this.joinedRooms = new JoinedRooms(ctx);
  }

  private get rooms() {
    return this.ctx.services.rooms;
  }

  /**
   * `knownHeads`: positions already known to be committed (from the bus),
   * used after a wake-up to save a read; otherwise the heads are read.
   * `eventRooms`: rooms whose new events woke the request (a hint: their
   * timelines are read early, alongside the membership reads).
   * `stream`: an initial sync with more than STREAMED_ABOVE_ROOMS joined
   * rooms leaves them to `SyncResult.joined`:
   * written as JSON text a piece at a time, the client takes the first rooms
   * while the server writes the next, and the text is encoded once, into
   * the pieces (an answer made whole is serialized after the last room,
   * scanned for its length and encoded again as it is written).
   */
  async build(p: SyncParams, knownHeads?: SyncToken, eventRooms: string[] = [], opts: { stream?: boolean } = {}): Promise<SyncResult> {
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
      presenceSection(this.ctx, this.parts.presence, userId, since, heads, filter),
      since === null || since.to_device < heads.to_device
        ? orDefault(
            this.ctx.services.e2ee.getToDevice(userId, p.deviceId, since?.to_device ?? 0, heads.to_device, TO_DEVICE_LIMIT),
            { events: [], nextPos: heads.to_device },
          )
        : Promise.resolve({ events: [], nextPos: heads.to_device }),
      orDefault(this.gathered.oneTimeKeyCounts.get({ userId, deviceId: p.deviceId }), {} as Record<string, number>),
      orDefault(this.gathered.fallbackKeyTypes.get({ userId, deviceId: p.deviceId }), [] as string[]),
    ]);
    // Awaited below; a failure before that must not go unhandled.
    deviceReads.catch(() => {});
    // A wake-up names the rooms with new events: if the user was in them at the last sync, their
    // timelines and unread counts are read now, and used if the rooms are rendered as expected.
    const guessed = new Set(guess ?? []);
    const hinted = eventRooms.filter((r) => guessed.has(r) && filter.allowsRoom(r));
    const early = hinted.length > 0 ? this.earlyRoomReads(p, since!, heads, hinted) : null;
    early?.catch(() => {});
    const [at, ignored, blocksInvites, accountChanges, guessedActivity] = await Promise.all([
      this.membershipsAt(userId, heads.events),
      this.parts.accountData.ignoredUsers(userId),
      this.parts.accountData.blocksInvites(userId),
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
          // Invites stay hidden while the user blocks them (spec: "Invite permission").
          if ((full || changes) && !blocksInvites) invites.push(m);
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
    const deltaRooms = new Set(joinPlans.filter((j) => j.mode === 'delta').map((j) => j.roomId));
    const [moreActivity, receipts, filled] = await Promise.all([
      since && since.events < heads.events && unguessed.length > 0
        ? this.activity.between(unguessed, since.events, heads.events)
        : Promise.resolve(new Set<string>()),
      this.parts.receipts.changes(joined, since?.receipts ?? 0, heads.receipts, userId),
      since && since.events < heads.events ? this.rooms.getRoomsFilledBetween(deltaRooms, since.events, heads.events) : Promise.resolve(new Set<string>()),
    ]);
    // A room whose partial state was filled in since the token is rendered whole (JoinPlan.stateFilled).
    for (const j of joinPlans) if (filled.has(j.roomId)) Object.assign(j, { mode: 'full', stateFilled: true });
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
    const streamed = opts.stream === true && !incremental && renderedJoins.length > STREAMED_ABOVE_ROOMS;
    const [joinEntries, inviteEntries, knockEntries, leaveEntries, [presence, toDevice, otk, fallback]] = await Promise.all([
      streamed ? Promise.resolve([]) : this.renderJoins(run, renderedJoins, earlyReads),
      Promise.all(invites.map((m) => strippedRoom(this.rooms, run, m, 'invite_state'))),
      Promise.all(knocks.map((m) => strippedRoom(this.rooms, run, m, 'knock_state'))),
      leftRooms(this.rooms, run, leaves),
      deviceReads,
    ]);

    const deviceListsOut = since ? await deviceLists(this.ctx, run, joinPlans, leaves) : null;

    const rooms: JsonObject = { join: {}, invite: {}, leave: {}, knock: {} };
    let roomCount = 0;
    const put = (section: string, entries: Array<RoomEntry | null>) => {
      for (const e of entries) {
        if (!e) continue;
        (rooms[section] as JsonObject)[e[0]] = e[1];
        roomCount++;
      }
    };
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
      account_data: { events: fields(limitList(accountData, filter.accountData.limit), filter) },
      presence: { events: fields(presence, filter) },
      to_device: { events: toDevice.events },
      device_one_time_keys_count: otk,
      device_unused_fallback_key_types: fallback,
    };
    if (deviceListsOut) body.device_lists = { changed: [...deviceListsOut.changed], left: [...deviceListsOut.left] };

    const empty =
      roomCount === 0 &&
      accountData.length === 0 &&
      presence.length === 0 &&
      toDevice.events.length === 0 &&
      !streamed &&
      (!deviceListsOut || (deviceListsOut.changed.size === 0 && deviceListsOut.left.size === 0));
    // Events in invited rooms do not concern the user; membership events for them carry the user id.
    const result: SyncResult = { body, empty, heads, rooms: joined };
    if (streamed) result.joined = this.streamJoins(run, renderedJoins);
    return result;
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
        SYNC_SHAPE,
      ),
      this.unreadCounts(p, roomIds.map((roomId) => ({ roomId }))),
    ]);
    return { timelines, unread };
  }

  /** Unread counts of the rooms, those already read (`known`) included. */
  private async unreadCounts(p: SyncParams, rooms: { roomId: string }[], known?: UnreadCounts): Promise<UnreadCounts> {
    const missing = rooms.map((r) => r.roomId).filter((r) => !known?.has(r));
    if (missing.length === 0) return known ?? new Map();
    const threads = p.filter.raw.room?.timeline?.unread_thread_notifications === true;
    const counts = await orDefault(this.gathered.unread.get({ userId: p.userId, roomIds: missing, threads }), new Map() as UnreadCounts);
    if (known) for (const [r, c] of known) if (!counts.has(r)) counts.set(r, c);
    return counts;
  }

  // ---- joined rooms ----

  /** The entries of the joined rooms, a batch at a time, with their unread counts. */
  private async renderJoins(run: Run, plans: JoinPlan[], early: { timelines: Map<string, TimelineChunk>; unread: UnreadCounts } | null): Promise<RoomEntry[]> {
    const out: RoomEntry[] = [];
    for (let i = 0; i < plans.length; i += ROOMS_PER_BATCH) {
      const batch = plans.slice(i, i + ROOMS_PER_BATCH);
      const [unread, entries] = await Promise.all([
        this.unreadCounts(run.p, batch, early?.unread),
        this.joinedRooms.render(run, batch, early?.timelines),
      ]);
      for (const e of entries) {
        const c = unread.get(e[0]);
        e[1].unread_notifications = { notification_count: c?.notification_count ?? 0, highlight_count: c?.highlight_count ?? 0 };
        // Sent only when the filter asks for it (sync.yaml): the threads with something unread.
        if (c?.threads !== undefined && Object.keys(c.threads).length > 0) e[1].unread_thread_notifications = c.threads;
        out.push(e);
      }
    }
    return out;
  }

  /**
   * The joined rooms of an initial sync as JSON text, a batch at a time. A
   * request identical to one under way (same device, filter, options and
   * heads: the same rooms, rendered the same) reads the text that one makes,
   * as long as none of it was let go yet (SharedJson). Not across devices:
   * an event's `transaction_id` is shown only to the device that sent it,
   * and lazy loading records what each device was sent.
   */
  private streamJoins(run: Run, plans: JoinPlan[]): AsyncIterable<JsonPiece> {
    const { p, heads } = run;
    const key = [p.userId, p.deviceId, JSON.stringify(p.filter.raw), p.useStateAfter, formatSyncToken(heads)].join('\u0000');
    const running = this.renders.get(key);
    if (running && running.joinable()) return running.read();
    const json = new SharedJson();
    const reader = json.read();
    this.renders.set(key, json);
    void (async () => {
      try {
        for (let i = 0; i < plans.length; i += ROOMS_PER_BATCH) {
          for (const piece of entriesJson(await this.renderJoins(run, plans.slice(i, i + ROOMS_PER_BATCH), null))) json.push(piece);
        }
        json.end();
      } catch (err) {
        json.fail(err);
      } finally {
        if (this.renders.get(key) === json) this.renders.delete(key);
      }
    })();
    return reader;
  }

  // ---- memberships ----

  private async membershipsAt(userId: string, pos: number): Promise<Map<string, RoomMembership>> {
    const hit = this.memberships.get(userId);
    if (hit && hit.pos === pos) return hit.map;
    const list = await this.gathered.memberships.get(userId);
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
}
