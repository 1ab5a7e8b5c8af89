import type { Context } from '../context.js';
import type { JsonObject, JsonValue } from '../core/types.js';
import type { RoomMembership } from '../rooms/service.js';
import type { RoomActivity } from '../sync/room-activity.js';
import type { SyncToken } from '../sync/token.js';
import { changesToken, ThreadSubscriptions } from '../thread-subscriptions/service.js';
import { THREAD_SUBSCRIPTIONS_EXTENSION, type Extensions, type ScopedExtension } from './request.js';
import { threadsExtension } from './threads-extension.js';

/**
 * The extensions of sliding sync, each answered from the stream positions
 * between the previous response and this one: `to_device` (MSC3885), `e2ee`
 * (MSC3884: device list changes, one-time key counts, unused fallback key
 * types), `account_data` (MSC3959), `receipts` (MSC3960) and `typing`
 * (MSC3961), and `io.element.msc4308.thread_subscriptions` (MSC4308: the
 * user's thread subscription changes, newest first, with a `prev_batch` to
 * page back through those left out), and `threads` (MSC4360, threads-extension.ts).
 * Rooms sent in full (`initial`) get their whole receipts and
 * account data, since the client knows nothing of them yet.
 */

export interface ExtensionInput {
  userId: string;
  deviceId: string;
  heads: SyncToken;
  prevHeads: SyncToken | null;
  /** Rooms of each list's window, and subscribed rooms. */
  listRooms: Map<string, string[]>;
  subscribedRooms: string[];
  /** Rooms sent with `initial` in this response. */
  initialRooms: Set<string>;
  memberships: RoomMembership[];
  /** Thread subscription changes the connection has up to; null: none sent yet. */
  prevThreadSubs: number | null;
  /** Per room sent with a timeline in this response: the position just before its first event. */
  timelineFrom: Map<string, number>;
  /** Whether the threads extension was on for an earlier response of the connection. */
  threadsBefore: boolean;
}

export interface ExtensionResult {
  body: JsonObject;
  /** Whether anything here is news (a long-poll answers early). */
  news: boolean;
  /** Position of the to-device stream the client now has. */
  toDevicePos: number;
  /** Thread subscription changes sent up to here, when the extension was asked for. */
  threadSubsPos: number | null;
}

/** The rooms an extension covers: its lists' windows and the rooms it names, never beyond what the request matched. */
function scopeRooms(ext: ScopedExtension, input: ExtensionInput): string[] {
  const out = new Set<string>();
  const matched = new Set<string>(input.subscribedRooms);
  for (const [name, ids] of input.listRooms) {
    for (const id of ids) {
      matched.add(id);
      if (ext.lists === null || ext.lists.includes(name)) out.add(id);
    }
  }
  for (const id of ext.rooms ?? input.subscribedRooms) if (matched.has(id)) out.add(id);
  return [...out];
}

/**
 * Of the rooms in scope, those the user is joined to: lists keep rooms the user was kicked or
 * banned from (and invites), whose receipts and typing are not theirs to see (MSC4508
 * "Security considerations").
 */
function joinedOnly(roomIds: string[], input: ExtensionInput): string[] {
  const joined = new Set(input.memberships.filter((m) => m.membership === 'join').map((m) => m.roomId));
  return roomIds.filter((id) => joined.has(id));
}

export class ExtensionsBuilder {
  private readonly threadSubs: ThreadSubscriptions;

  constructor(
    private readonly ctx: Context,
    private readonly activity: RoomActivity,
  ) {
    this.threadSubs = new ThreadSubscriptions(ctx);
  }

  async build(ext: Extensions, input: ExtensionInput): Promise<ExtensionResult> {
    const body: JsonObject = {};
    let news = false;
    let toDevicePos = input.heads.to_device;
    let threadSubsPos: number | null = null;
    const parts: Promise<void>[] = [];
    if (ext.toDevice.enabled) {
      parts.push(
        this.toDevice(ext.toDevice, input).then((r) => {
          body.to_device = { next_batch: String(r.nextPos), events: r.events as JsonValue[] };
          toDevicePos = r.nextPos;
          if (r.events.length > 0) news = true;
        }),
      );
    }
    if (ext.e2ee.enabled) {
      parts.push(
        this.e2ee(input).then((r) => {
          body.e2ee = r.body;
          if (r.news) news = true;
        }),
      );
    }
    if (ext.accountData.enabled) {
      parts.push(
        this.accountData(ext.accountData, input).then((r) => {
          body.account_data = r;
          if ((r.global as JsonValue[]).length > 0 || Object.keys(r.rooms as JsonObject).length > 0) news = true;
        }),
      );
    }
    if (ext.receipts.enabled) {
      parts.push(
        this.receipts(ext.receipts, input).then((r) => {
          body.receipts = { rooms: r };
          if (Object.keys(r).length > 0) news = true;
        }),
      );
    }
    if (ext.typing.enabled) {
      const r = this.typing(ext.typing, input);
      body.typing = { rooms: r };
      if (Object.keys(r).length > 0) news = true;
    }
    if (ext.threadSubscriptions.enabled) {
      parts.push(
        this.threadSubscriptions(ext.threadSubscriptions.limit, input).then((r) => {
          body[THREAD_SUBSCRIPTIONS_EXTENSION] = r.body;
          threadSubsPos = r.pos;
          if (r.news) news = true;
        }),
      );
    }
    if (ext.threads.enabled) {
      const threads = {
        userId: input.userId,
        deviceId: input.deviceId,
        joinedRooms: input.memberships.filter((m) => m.membership === 'join').map((m) => m.roomId),
        // Turned on for the first time on this connection: everything, as on a new connection (MSC4508 lets a client defer an extension).
        after: input.threadsBefore ? (input.prevHeads?.events ?? null) : null,
        upTo: input.heads.events,
        timelineFrom: input.timelineFrom,
      };
      parts.push(
        threadsExtension(this.ctx, ext.threads, threads).then((r) => {
          if (r === null) return;
          for (const name of ext.threads.names) body[name] = r;
          news = true;
        }),
      );
    }
    await Promise.all(parts);
    return { body, news, toDevicePos, threadSubsPos };
  }

  /** Changes since the connection's last response, the newest `limit`; `prev_batch` when some were left out. */
  private async threadSubscriptions(limit: number, input: ExtensionInput): Promise<{ body: JsonObject; pos: number; news: boolean }> {
    const upTo = await this.threadSubs.latestPos(input.userId);
    const after = Math.min(input.prevThreadSubs ?? 0, upTo);
    if (upTo <= after) return { body: {}, pos: upTo, news: false };
    const page = await this.threadSubs.changes(input.userId, after, upTo, limit);
    const body: JsonObject = {};
    if (Object.keys(page.subscribed).length > 0) body.subscribed = page.subscribed;
    if (Object.keys(page.unsubscribed).length > 0) body.unsubscribed = page.unsubscribed;
    if (page.olderThan !== null) body.prev_batch = changesToken(page.olderThan, after);
    return { body, pos: upTo, news: true };
  }

  private async toDevice(cfg: Extensions['toDevice'], input: ExtensionInput): Promise<{ events: JsonObject[]; nextPos: number }> {
    const e2ee = this.ctx.services.e2ee;
    const given = cfg.since !== null ? Number(cfg.since) : null;
    const since = Math.min(given ?? input.prevHeads?.to_device ?? 0, input.heads.to_device);
    // The client names what it has: messages up to there were delivered.
    if (since > 0) await e2ee.ackToDevice(input.userId, input.deviceId, since);
    return e2ee.getToDevice(input.userId, input.deviceId, since, input.heads.to_device, cfg.limit);
  }

  private async e2ee(input: ExtensionInput): Promise<{ body: JsonObject; news: boolean }> {
    const e2ee = this.ctx.services.e2ee;
    const [otk, fallback, lists] = await Promise.all([
      e2ee.getOneTimeKeyCounts(input.userId, input.deviceId),
      e2ee.getUnusedFallbackKeyTypes(input.userId, input.deviceId),
      input.prevHeads ? this.deviceLists(input, input.prevHeads) : Promise.resolve(null),
    ]);
    const body: JsonObject = { device_one_time_keys_count: otk, device_unused_fallback_key_types: fallback };
    if (lists) body.device_lists = { changed: [...lists.changed], left: [...lists.left] };
    return { body, news: lists !== null && (lists.changed.size > 0 || lists.left.size > 0) };
  }

  /**
   * Users whose devices changed among those sharing a room, users who came
   * to share one (joins, on either side) and users who share none any more
   * (spec: E2E "Tracking the device list for a user").
   */
  private async deviceLists(input: ExtensionInput, prev: SyncToken): Promise<{ changed: Set<string>; left: Set<string> }> {
    const rooms = this.ctx.services.rooms;
    const { heads, userId } = input;
    const changed = new Set<string>();
    const left = new Set<string>();
    const joined = input.memberships.filter((m) => m.membership === 'join').map((m) => m.roomId);
    const moved = prev.events < heads.events;
    // A room whose partial state was filled in counts as joined: the members learnt came to share it.
    const [eventful, filled] = moved
      ? await Promise.all([this.activity.between(joined, prev.events, heads.events), rooms.getStateFillPositions(new Set(joined), prev.events, heads.events)])
      : [new Set<string>(), new Map<string, number>()];
    const newlyJoined = input.memberships.filter((m) => m.membership === 'join' && (m.streamPos > prev.events || filled.has(m.roomId)));
    const newlyGone = input.memberships.filter((m) => (m.membership === 'leave' || m.membership === 'ban') && m.streamPos > prev.events);
    if (prev.device_lists >= heads.device_lists && eventful.size === 0 && newlyJoined.length === 0 && newlyGone.length === 0) return { changed, left };
    const sharing = await rooms.getUsersSharingRooms(userId);
    const [devices, memberChanges, joinedMembers, goneMembers] = await Promise.all([
      prev.device_lists < heads.device_lists ? this.ctx.services.e2ee.getDeviceListChanges(prev.device_lists, heads.device_lists, sharing) : Promise.resolve(new Set<string>()),
      eventful.size > 0 ? rooms.getStateChanges([...eventful].map((roomId) => ({ roomId, fromPos: prev.events, toPos: heads.events }))) : Promise.resolve(new Map()),
      Promise.all(newlyJoined.map((m) => rooms.getJoinedMembers(m.roomId))),
      Promise.all(newlyGone.map((m) => rooms.getJoinedMembers(m.roomId))),
    ]);
    for (const u of devices) changed.add(u);
    for (const list of joinedMembers) for (const u of list) changed.add(u);
    for (const list of goneMembers) for (const u of list) if (!sharing.has(u)) left.add(u);
    for (const events of memberChanges.values()) {
      for (const e of events) {
        if (e.type !== 'm.room.member' || e.state_key === undefined) continue;
        if (e.content.membership === 'join') {
          if (sharing.has(e.state_key)) changed.add(e.state_key);
        } else if (!sharing.has(e.state_key)) left.add(e.state_key);
      }
    }
    for (const u of left) changed.delete(u);
    left.delete(userId);
    return { changed, left };
  }

  private async accountData(cfg: ScopedExtension, input: ExtensionInput): Promise<JsonObject> {
    const ad = this.ctx.services.sync.accountData;
    const from = input.prevHeads?.account_data ?? 0;
    const scope = new Set(scopeRooms(cfg, input));
    const needAll = input.prevHeads !== null && [...input.initialRooms].some((r) => scope.has(r));
    const [changes, all, pushRules] = await Promise.all([
      ad.changes(input.userId, from, input.heads.account_data),
      needAll ? ad.changes(input.userId, 0, input.heads.account_data) : Promise.resolve([]),
      input.prevHeads === null ? ad.pushRules(input.userId) : Promise.resolve(null),
    ]);
    const global: JsonObject[] = [];
    const rooms: Record<string, JsonObject[]> = {};
    const add = (roomId: string, type: string, content: JsonObject) => {
      const list = (rooms[roomId] ??= []);
      const i = list.findIndex((e) => e.type === type);
      if (i >= 0) list[i] = { type, content };
      else list.push({ type, content });
    };
    for (const c of changes) {
      if (c.roomId === null) global.push({ type: c.type, content: c.content });
      else if (scope.has(c.roomId)) add(c.roomId, c.type, c.content);
    }
    for (const c of all) if (c.roomId !== null && input.initialRooms.has(c.roomId) && scope.has(c.roomId)) add(c.roomId, c.type, c.content);
    // Rules nobody edited yet live only in push: clients expect them on a new connection.
    if (pushRules && !global.some((e) => e.type === 'm.push_rules')) global.push({ type: 'm.push_rules', content: pushRules });
    return { global: global as JsonValue[], rooms: rooms as unknown as JsonObject };
  }

  private async receipts(cfg: ScopedExtension, input: ExtensionInput): Promise<JsonObject> {
    const receipts = this.ctx.services.sync.receipts;
    const scope = joinedOnly(scopeRooms(cfg, input), input);
    const fresh = scope.filter((r) => input.initialRooms.has(r) || input.prevHeads === null);
    const known = scope.filter((r) => !fresh.includes(r));
    const [a, b] = await Promise.all([
      receipts.changes(fresh, 0, input.heads.receipts, input.userId),
      input.prevHeads ? receipts.changes(known, input.prevHeads.receipts, input.heads.receipts, input.userId) : Promise.resolve(new Map<string, JsonObject>()),
    ]);
    const out: JsonObject = {};
    for (const [roomId, content] of [...a, ...b]) out[roomId] = { type: 'm.receipt', content };
    return out;
  }

  private typing(cfg: ScopedExtension, input: ExtensionInput): JsonObject {
    const typing = this.ctx.services.sync.typing;
    const scope = joinedOnly(scopeRooms(cfg, input), input);
    const fresh = scope.filter((r) => input.initialRooms.has(r) || input.prevHeads === null);
    const known = scope.filter((r) => !fresh.includes(r));
    const out: JsonObject = {};
    const put = (m: Map<string, string[]>) => {
      for (const [roomId, users] of m) out[roomId] = { type: 'm.typing', content: { user_ids: users } };
    };
    put(typing.changedSince(fresh, null));
    if (input.prevHeads) put(typing.changedSince(known, input.prevHeads.typing));
    return out;
  }
}
