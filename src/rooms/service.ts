import type { Context, Lifecycle } from '../context.js';
import { canSendEvent } from '../core/power-levels.js';
import { strippedHints } from './stripped-hints.js';
import { splitStateKey, stateKey, type ClientEvent, type JsonObject, type StateMap, type StrippedStateEvent } from '../core/types.js';
import type { Requester } from '../http/requester.js';
import { isServable, storedEventFromRow, type StoredEvent } from './events/stored-event.js';
import { selectEventRange, type TxnEndpoint } from './store/events-table.js';
import { selectStreamEventsOfTypes } from './store/stream-reads.js';
import { upgradeRoom } from './upgrade.js';
import { createRoom, type CreateRoomBody } from './create-room.js';
import { acceptThirdPartyInvite, checkThreepidInvite, inviteByProof, inviteByThreepid } from './third-party-invite.js';
import type { RoomEventFilter } from './event-filter.js';
import type { CurrentStateDeltaRow } from './tables.js';
import {
  banUser,
  forgetRoom,
  inviteUser,
  joinRoom,
  joinTarget,
  kickUser,
  knockRoom,
  leaveRoom,
  memberContent,
  profileOf,
  sendMembershipEverywhere,
  unbanUser,
} from './membership.js';
import { headPowerLevels } from './power.js';
import { RoomsCore } from './room-core.js';
import { redactEvent, sendMessage, sendState } from './send.js';
import { readJoinedMembers, readMembers, readRoomState, readStateEvent } from './state-reads.js';
import { selectUsersSharingRooms } from './store/memberships-table.js';
import { selectMembershipDeltas, selectStateDeltasAfter } from './store/state-deltas-table.js';
import { selectActiveRooms, selectLatestEvents, selectMembershipsOfUser, selectMembershipsOfUsers, selectStateGroupsAt } from './store/sync-queries.js';
import { roomSummaries, type RoomSummary } from './summaries.js';
import { readContext, readMessages, type MessagesParams } from './pagination.js';
import { eventNearTimestamp } from './timestamp-to-event.js';
import { readEvent, readTimeline, readTimelines } from './timeline.js';
import { selectFillPositions } from './store/partial-state-table.js';
import { selectStateKeyInRooms } from './store/current-state-table.js';

import type { EventShape, Membership, RoomMembership, TimelineChunk, TimelineQuery } from './read-types.js';

export type { EventShape, Membership, RoomMembership, TimelineChunk, TimelineQuery };

/** Stripped state types shown with invites and knocks (spec "Stripped state"). */
const STRIPPED_TYPES = [
  'm.room.create',
  'm.room.join_rules',
  'm.room.name',
  'm.room.avatar',
  'm.room.topic',
  'm.room.canonical_alias',
  'm.room.encryption',
];

/**
 * The event pipeline, room state and every room endpoint. Methods below
 * "cross-domain API" are used by sync, push, accounts and directory, and keep
 * their signatures.
 */
export class RoomsService implements Lifecycle {
  /** Caches, the pipeline and event formatting, shared by the endpoint modules. */
  readonly core: RoomsCore;

  constructor(private readonly ctx: Context) {
    this.core = new RoomsCore(ctx);
  }

  /** Lets queued writes finish before the database closes. */
  async stop(): Promise<void> {
    await this.core.pipeline.drained();
  }

  // ---- cross-domain API ----

  /** Every room the user has a membership in (any membership), with the event that set it. Forgotten rooms are left out. */
  async getMemberships(userId: string): Promise<RoomMembership[]> {
    const rows = await selectMembershipsOfUser(this.ctx.db, userId);
    return rows
      .filter((r) => Number(r.forgotten) !== 1)
      .map((r) => ({ roomId: r.room_id, membership: r.membership as Membership, eventId: r.event_id, streamPos: Number(r.stream_pos) }));
  }

  /** getMemberships for several users in one query: every user asked for has an entry. */
  async getMembershipsOfUsers(userIds: string[]): Promise<Map<string, RoomMembership[]>> {
    const out = new Map<string, RoomMembership[]>(userIds.map((u) => [u, []]));
    if (userIds.length === 0) return out;
    for (const r of await selectMembershipsOfUsers(this.ctx.db, [...new Set(userIds)])) {
      if (Number(r.forgotten) === 1) continue;
      out.get(r.user_id)?.push({ roomId: r.room_id, membership: r.membership as Membership, eventId: r.event_id, streamPos: Number(r.stream_pos) });
    }
    return out;
  }

  /**
   * The user's membership changes with stream position in (fromPos, toPos]:
   * every change of the user's m.room.member state, chronological (so the
   * last one per room is the membership at `toPos`), those made by state
   * resolution included. Profile changes are join -> join.
   */
  async getMembershipChanges(userId: string, fromPos: number, toPos: number): Promise<RoomMembership[]> {
    if (toPos <= fromPos) return [];
    const rows = await selectMembershipDeltas(this.ctx.db, userId, { after: fromPos, upTo: toPos });
    return rows
      .filter((r) => r.membership !== null)
      .map((r) => ({ roomId: r.room_id, membership: r.membership as Membership, eventId: r.event_id, streamPos: Number(r.stream_pos) }));
  }

  /** Of the given rooms, those with any event whose stream position is in (fromPos, toPos]. One query. */
  async getRoomsWithEventsBetween(roomIds: string[], fromPos: number, toPos: number): Promise<Set<string>> {
    return new Set(await selectActiveRooms(this.ctx.db, roomIds, fromPos, toPos));
  }

  /**
   * Of each room, the stream position of its newest servable event of one of
   * `types` at or before `upTo` (rooms without one are absent): sliding
   * sync's recency. One statement per 200 rooms.
   */
  async getLatestEventPositions(roomIds: string[], types: string[], upTo: number): Promise<Map<string, number>> {
    const rows = await selectLatestEvents(this.ctx.db, roomIds.map((roomId) => ({ roomId, after: Number.MIN_SAFE_INTEGER, upTo, limit: 1 })), { types });
    return new Map(rows.map((r) => [r.room_id, r.stream_pos]));
  }

  /** One query for the events; history visibility applied for the viewer. */
  async getTimeline(q: TimelineQuery): Promise<TimelineChunk> {
    return readTimeline(this.core, q);
  }

  /**
   * getTimeline for many rooms at once (one query per room): one statement for
   * the events of all rooms sharing a filter, history visibility per room.
   */
  async getTimelines(queries: TimelineQuery[], shape: EventShape = {}): Promise<Map<string, TimelineChunk>> {
    return readTimelines(this.core, queries, shape);
  }

  /** Room state after the last event at or before stream position `pos`, as client events. */
  async getStateAtPosition(roomId: string, pos: number): Promise<ClientEvent[]> {
    const state = await this.stateAt(roomId, pos);
    return this.formatIds(state.values());
  }

  /**
   * getStateAtPosition for many rooms (a later item for the same room wins): one query for the
   * state groups, one for the groups not cached, one for the events not cached.
   */
  async getStatesAtPositions(items: { roomId: string; pos: number }[], shape: EventShape = {}): Promise<Map<string, ClientEvent[]>> {
    const unique = [...new Map(items.map((it) => [it.roomId, it])).values()];
    const states = await this.statesAt(unique);
    const ids: string[] = [];
    for (const state of states) for (const id of state.values()) ids.push(id);
    const out = new Map<string, ClientEvent[]>(unique.map((it) => [it.roomId, []]));
    await this.formatIdsByRoom(ids, shape, (roomId, ev) => out.get(roomId)?.push(ev));
    return out;
  }

  /**
   * State events whose (type, state_key) changed between two positions, with
   * their value at `toPos` (for incremental sync's `state` section).
   */
  async getStateChangesBetween(roomId: string, fromPos: number, toPos: number): Promise<ClientEvent[]> {
    return (await this.getStateChanges([{ roomId, fromPos, toPos }])).get(roomId) ?? [];
  }

  /** getStateChangesBetween for many rooms (a later item for the same room wins), in the queries of getStatesAtPositions. */
  async getStateChanges(items: { roomId: string; fromPos: number; toPos: number }[], shape: EventShape = {}): Promise<Map<string, ClientEvent[]>> {
    const deltas = await this.getStateDeltas(items, shape);
    return new Map([...deltas].map(([roomId, d]) => [roomId, d.changed]));
  }

  /**
   * getStateChanges, plus the keys the state lost between the two positions: state resolution
   * can drop a key altogether (a state reset), which no event in the changes shows.
   */
  async getStateDeltas(items: { roomId: string; fromPos: number; toPos: number }[], shape: EventShape = {}): Promise<Map<string, { changed: ClientEvent[]; removed: { type: string; state_key: string }[] }>> {
    const out = new Map(items.map((it) => [it.roomId, { changed: [] as ClientEvent[], removed: [] as { type: string; state_key: string }[] }]));
    const unique = [...new Map(items.map((it) => [it.roomId, it])).values()].filter((it) => it.toPos > it.fromPos);
    if (unique.length === 0) return out;
    const states = await this.statesAt(unique.flatMap((it) => [{ roomId: it.roomId, pos: it.fromPos }, { roomId: it.roomId, pos: it.toPos }]));
    const changed: string[] = [];
    for (let i = 0; i < unique.length; i++) {
      const before = states[2 * i]!;
      const after = states[2 * i + 1]!;
      if (before === after) continue;
      for (const [k, id] of after) if (before.get(k) !== id) changed.push(id);
      const removed = out.get(unique[i]!.roomId)!.removed;
      for (const k of before.keys()) {
        if (after.has(k)) continue;
        const [type, key] = splitStateKey(k);
        removed.push({ type, state_key: key });
      }
    }
    await this.formatIdsByRoom(changed, shape, (roomId, ev) => out.get(roomId)?.changed.push(ev));
    return out;
  }

  /** Of `roomIds`, those whose partial state was filled in at an events stream position in (fromPos, toPos]. */
  async getRoomsFilledBetween(roomIds: ReadonlySet<string>, fromPos: number, toPos: number): Promise<Set<string>> {
    if (roomIds.size === 0) return new Set();
    return new Set((await selectFillPositions(this.ctx.db, roomIds, fromPos, toPos)).keys());
  }

  /** getRoomsFilledBetween with the position each room's state was filled in at. */
  async getStateFillPositions(roomIds: ReadonlySet<string>, fromPos: number, toPos: number): Promise<Map<string, number>> {
    if (roomIds.size === 0 || toPos <= fromPos) return new Map();
    return selectFillPositions(this.ctx.db, roomIds, fromPos, toPos);
  }

  /** The current state event at (`type`, `stateKey`) in each of `roomIds` that has one, as client events. */
  async getStateEventInRooms(roomIds: readonly string[], type: string, stateKey: string): Promise<ClientEvent[]> {
    if (roomIds.length === 0) return [];
    return this.formatIds((await selectStateKeyInRooms(this.ctx.db, roomIds, type, stateKey)).map((r) => r.event_id));
  }

  /** The room's current state; optionally only some types. Unknown rooms have none. */
  async getCurrentState(roomId: string, types?: string[]): Promise<ClientEvent[]> {
    const head = await this.core.heads.get(roomId);
    if (!head) return [];
    if (types === undefined) return this.formatIds(head.state.values());
    const wanted = new Set(types);
    const ids: string[] = [];
    for (const [k, id] of head.state) if (wanted.has(splitStateKey(k)[0])) ids.push(id);
    return this.formatIds(ids);
  }

  /** Stripped state shown with an invite or knock (create, join rules, name, avatar, topic, encryption, canonical alias, and the member event). */
  async getStrippedState(roomId: string, memberEventId: string): Promise<StrippedStateEvent[]> {
    const head = await this.core.heads.get(roomId);
    if (!head) return [];
    const ids = STRIPPED_TYPES.map((t) => head.state.get(stateKey(t, ''))).filter((x): x is string => x !== undefined);
    ids.push(memberEventId);
    const loaded = await this.core.events.getMany(ids);
    const formatted = await this.core.format([...loaded.values()].filter((e) => e.roomId === roomId));
    const out: StrippedStateEvent[] = formatted.map((e) => ({ type: e.type, state_key: e.state_key ?? '', sender: e.sender, content: e.content }));
    // A membership held out of band carries the other server's stripped state as hints for what is not held here.
    const have = new Set(out.map((e) => stateKey(e.type, e.state_key)));
    for (const hint of strippedHints(loaded.get(memberEventId)?.pdu.unsigned)) {
      if (!STRIPPED_TYPES.includes(hint.type) || hint.state_key !== '' || have.has(stateKey(hint.type, hint.state_key))) continue;
      have.add(stateKey(hint.type, hint.state_key));
      out.push(hint);
    }
    return out;
  }

  /** Client forms of the events this server serves (rejected, soft-failed and outlier events are left out). */
  async getEvents(eventIds: string[], viewer?: { userId: string; deviceId?: string }): Promise<Map<string, ClientEvent>> {
    const loaded = await this.core.events.getMany(eventIds);
    const servable = [...loaded.values()].filter(isServable);
    const formatted = await this.core.format(servable, viewer);
    return new Map(formatted.map((e) => [e.event_id, e]));
  }

  /**
   * Client forms of state events that are or were part of a room's current state (as the
   * current-state stream names them), redacted ones pruned. Unlike getEvents this keeps
   * outliers: the state a join over federation brings is stored as outliers. Rejected events are
   * left out.
   */
  async getCurrentStateEvents(eventIds: string[]): Promise<Map<string, ClientEvent>> {
    const loaded = await this.core.events.getMany(eventIds);
    const kept = [...loaded.values()].filter((ev) => ev.rejectedReason === null);
    const formatted = await this.core.format(kept);
    return new Map(formatted.map((e) => [e.event_id, e]));
  }

  /** Servable events of `types` by stream position, after `after` or (backfilled history) below `before` (store: selectStreamEventsOfTypes). */
  async streamEventsOfTypes(q: { types: string[]; after: number; limit: number } | { types: string[]; before: number; limit: number }): Promise<StoredEvent[]> {
    const rows = await selectStreamEventsOfTypes(this.ctx.db, q);
    const events = await this.core.events.getManyForRows(rows);
    return rows.flatMap((r) => events.get(r.event_id) ?? []);
  }

  /**
   * One page of the room's servable events in stream order, after stream position `after`, as
   * stored: a redacted event keeps its original content here. For admin tools that must reach
   * everything the room's events ever referred to (the media purge by room).
   */
  async storedEventsOfRoom(roomId: string, after: number | undefined, limit: number): Promise<StoredEvent[]> {
    const rows = await selectEventRange(this.ctx.db, { roomId, after, order: 'asc', limit });
    return rows.map((r) => storedEventFromRow(r));
  }

    /** Stream position of an event (null for outliers or unknown events). */
  async getEventStreamPos(eventId: string): Promise<number | null> {
    const ev = await this.core.events.get(eventId);
    return ev?.streamPos ?? null;
  }

  /** User ids currently joined to the room. */
  async getJoinedMembers(roomId: string): Promise<string[]> {
    const head = await this.core.heads.get(roomId);
    if (!head) return [];
    const out: string[] = [];
    for (const [u, m] of head.members) if (m.membership === 'join') out.push(u);
    return out;
  }

  /** Users who share at least one joined room with the user (the user included). */
  async getUsersSharingRooms(userId: string): Promise<Set<string>> {
    const out = new Set(await selectUsersSharingRooms(this.ctx.db, userId));
    out.add(userId);
    return out;
  }

  /**
   * Current-state changes of every room with position in (after, upTo], in stream order (about
   * `limit`, and the whole of the last position returned): what the user directory follows.
   */
  async stateDeltasAfter(after: number, upTo: number, limit: number): Promise<CurrentStateDeltaRow[]> {
    return selectStateDeltasAfter(this.ctx.db, after, upTo, limit);
  }

  /** Sends new m.room.member events with the user's new profile into every room they are joined to. */
  async onProfileChanged(userId: string): Promise<void> {
    const profile = await profileOf(this.ctx, userId);
    const rooms = (await this.getMemberships(userId)).filter((m) => m.membership === 'join').map((m) => m.roomId);
    await sendMembershipEverywhere(this.core, userId, rooms, (head) => {
      const m = head.members.get(userId);
      if (m?.membership !== 'join') return null;
      if (m.displayName === (profile?.displayname ?? null) && m.avatarUrl === (profile?.avatar_url ?? null)) return null;
      return memberContent('join', profile);
    });
  }

  /** Leaves every room (deactivation): joins, invites and knocks. */
  async leaveAllRooms(userId: string): Promise<void> {
    const rooms = (await this.getMemberships(userId))
      .filter((m) => m.membership === 'join' || m.membership === 'invite' || m.membership === 'knock')
      .map((m) => m.roomId);
    await sendMembershipEverywhere(this.core, userId, rooms, (head) => {
      const m = head.members.get(userId)?.membership;
      return m === 'join' || m === 'invite' || m === 'knock' ? { membership: 'leave' } : null;
    });
  }

  // ---- for the directory ----

  async roomExists(roomId: string): Promise<boolean> {
    return (await this.core.versionOf(roomId)) !== null;
  }

  /** Whether the user is joined and their power level allows sending this state event type. */
  async userCanSendState(roomId: string, userId: string, type: string): Promise<boolean> {
    const head = await this.core.heads.get(roomId);
    if (!head || head.members.get(userId)?.membership !== 'join') return false;
    return canSendEvent(await headPowerLevels(this.core, head), userId, type, true);
  }

  /** Published-directory summaries of rooms; unknown rooms are absent. */
  async getRoomSummaries(roomIds: string[]): Promise<Map<string, RoomSummary>> {
    return roomSummaries(this.core, roomIds);
  }

  /** Whether the user may see the room's history at all (members, or anyone when world-readable). */
  async canSeeRoom(roomId: string, userId: string): Promise<boolean> {
    const head = await this.core.heads.get(roomId);
    if (!head) return false;
    if (head.members.get(userId)?.membership === 'join') return true;
    return (await this.core.visibility.currentVisibility(roomId)) === 'world_readable';
  }

  // ---- endpoints ----

  createRoom(requester: Requester, body: CreateRoomBody) {
    return createRoom(this.core, requester, body);
  }
  async join(requester: Requester, roomIdOrAlias: string, body: { reason?: string; third_party_signed?: JsonObject }, servers: string[] = []) {
    const target = await joinTarget(this.core, roomIdOrAlias, servers);
    if (body.third_party_signed !== undefined) await inviteByProof(this.core, requester.userId, target.roomId, body.third_party_signed);
    return joinRoom(this.core, requester, target.roomId, body, target.servers);
  }
  knock(requester: Requester, roomIdOrAlias: string, body: { reason?: string }, servers: string[] = []) {
    return knockRoom(this.core, requester, roomIdOrAlias, body, servers);
  }
  leave(requester: Requester, roomId: string, body: { reason?: string }) {
    return leaveRoom(this.core, requester, roomId, body);
  }
  invite(requester: Requester, roomId: string, body: { user_id?: unknown; reason?: string; medium?: unknown; address?: unknown }) {
    // Without a user id the body names a third-party identifier (room_membership.yaml, "invite by 3PID").
    if (body.user_id === undefined && (body.medium !== undefined || body.address !== undefined)) {
      return inviteByThreepid(this.core, requester, roomId, checkThreepidInvite(body));
    }
    return inviteUser(this.core, requester, roomId, body);
  }
  /** A third-party invite's proof came back (onbind or exchange_third_party_invite): `sender`'s invite of `signed.mxid` is sent. */
  acceptThirdPartyInvite(roomId: string, sender: string, signed: JsonObject) {
    return acceptThirdPartyInvite(this.core, roomId, sender, signed);
  }
  kick(requester: Requester, roomId: string, body: { user_id?: unknown; reason?: string }) {
    return kickUser(this.core, requester, roomId, body);
  }
  ban(requester: Requester, roomId: string, body: { user_id?: unknown; reason?: string }) {
    return banUser(this.core, requester, roomId, body);
  }
  unban(requester: Requester, roomId: string, body: { user_id?: unknown; reason?: string }) {
    return unbanUser(this.core, requester, roomId, body);
  }
  upgrade(requester: Requester, roomId: string, body: { new_version: string; additional_creators?: unknown }) {
    return upgradeRoom(this.core, requester, roomId, body);
  }
  forget(requester: Requester, roomId: string) {
    return forgetRoom(this.core, requester, roomId);
  }
  async joinedRooms(userId: string): Promise<string[]> {
    return (await this.getMemberships(userId)).filter((m) => m.membership === 'join').map((m) => m.roomId);
  }
  sendMessage(requester: Requester, roomId: string, type: string, txnId: string, content: JsonObject, endpoint?: TxnEndpoint) {
    return sendMessage(this.core, requester, roomId, type, txnId, content, endpoint);
  }
  sendState(requester: Requester, roomId: string, type: string, key: string, content: JsonObject, txn?: { txnId: string; endpoint: TxnEndpoint }) {
    return sendState(this.core, requester, roomId, type, key, content, txn);
  }
  redact(requester: Requester, roomId: string, eventId: string, txnId: string, body: JsonObject) {
    return redactEvent(this.core, requester, roomId, eventId, txnId, body);
  }
  eventNearTimestamp(requester: Requester, roomId: string, q: { ts?: unknown; dir?: unknown }) {
    return eventNearTimestamp(this.core, requester, roomId, q);
  }
  roomState(requester: Requester, roomId: string) {
    return readRoomState(this.core, requester, roomId);
  }
  stateEvent(requester: Requester, roomId: string, type: string, key: string, format: 'content' | 'event') {
    return readStateEvent(this.core, requester, roomId, type, key, format);
  }
  members(requester: Requester, roomId: string, q: { at?: string; membership?: Membership; not_membership?: Membership }) {
    return readMembers(this.core, requester, roomId, q);
  }
  joinedMembersOf(requester: Requester, roomId: string) {
    return readJoinedMembers(this.core, requester.userId, roomId);
  }
  messages(requester: Requester, roomId: string, p: MessagesParams) {
    return readMessages(this.core, requester, roomId, p);
  }
  context(requester: Requester, roomId: string, eventId: string, limit: number | undefined, filter: RoomEventFilter) {
    return readContext(this.core, requester, roomId, eventId, limit, filter);
  }
  event(requester: Requester, roomId: string, eventId: string) {
    return readEvent(this.core, requester, roomId, eventId);
  }

  // ---- helpers ----

  private async stateAt(roomId: string, pos: number): Promise<StateMap> {
    return (await this.statesAt([{ roomId, pos }]))[0]!;
  }

  /** Room states at positions, per item: one query for the state groups, one for the groups not cached. */
  private async statesAt(items: { roomId: string; pos: number }[]): Promise<StateMap[]> {
    if (items.length === 0) return [];
    const groups = await selectStateGroupsAt(this.ctx.db, items);
    const maps = await this.core.groups.loadMany(groups.filter((g): g is number => g !== null));
    return groups.map((g) => (g === null ? new Map() : maps.get(g)!));
  }

  private async formatIds(ids: Iterable<string>): Promise<ClientEvent[]> {
    const loaded = await this.core.events.getViews(ids);
    // Outliers included: the state a room was joined with through another server is made of them.
    return this.core.format([...loaded.values()]);
  }

  /** formatIds, handing each event to `put` with its room (which `shape` may leave out of the event). */
  private async formatIdsByRoom(ids: Iterable<string>, shape: EventShape, put: (roomId: string, ev: ClientEvent) => void): Promise<void> {
    const loaded = await this.core.events.getViews(ids);
    for (const ev of await this.core.format([...loaded.values()], undefined, undefined, { withoutRoomId: shape.withoutRoomId })) {
      put(loaded.get(ev.event_id)!.roomId, ev);
    }
  }
}
