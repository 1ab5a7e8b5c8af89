import type { LRUCache } from 'lru-cache';
import { ALL_KEYS } from '../cluster/bus.js';
import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';
import { usesDefaultsOnly } from '../core/push/room-evaluation.js';
import {
  deleteUserRule,
  emptyUserPushRules,
  findRule,
  insertUserRule,
  mergeWithDefaults,
  setActions,
  setEnabled,
  validateKind,
  type NewPushRule,
  type RuleEditResult,
  type UserPushRules,
} from '../core/push/rule-edit.js';
import type { PushAction, PushRule, PushRuleSet } from '../core/push/types.js';
import type { ClientEvent, JsonObject } from '../core/types.js';
import type { StatementSink } from '../db/pg-pipeline.js';
import type { Tx } from '../db/schema.js';
import { MatrixError, invalidParam, missingParam, notFound } from '../http/errors.js';
import { selectOpenSpanRooms, selectSpanRooms } from './member-spans-store.js';
import { defaultRuleOptions, PushOutcomes, type PushOutcome, type RulesEntry } from './outcomes.js';
import { deleteOutcomesAt, selectRoomNotifications, type NotificationRow } from './push-outcomes-store.js';
import { deletePusher, deletePushersOfDevices, deletePushersOfOtherDevices, deletePushersOfOthers, getPushers, putPusher } from './pushers-store.js';
import { PushDelivery } from './delivery.js';
import { getPushRulesRows, lockPushRulesRow, putPushRules } from './push-rules-store.js';
import { advanceReadUpto, selectReadUpto } from './read-upto-store.js';
import { advanceThreadReadUpto } from './thread-read-store.js';
import { UNREAD_CACHE, UnreadCounts, type RoomUnread, type UnreadAsk } from './unread-counts.js';

export type { PushActionRow, PushOutcome } from './outcomes.js';

const RULES_CACHE = 'push_rules';
const DEFAULT_RULES_CACHE_SIZE = 5000;

function isUnimplemented(e: unknown): boolean {
  return e instanceof Error && e.message === 'unimplemented';
}

function editOrThrow<T>(r: RuleEditResult<T>): T {
  if (!r.ok) throw new MatrixError(r.status, r.errcode, r.error);
  return r.value;
}

function parseUserRules(json: string | undefined): UserPushRules {
  if (json === undefined) return emptyUserPushRules();
  const v = JSON.parse(json) as UserPushRules | null;
  return v ?? emptyUserPushRules();
}

export interface PusherBody {
  pushkey: string;
  kind: string | null;
  app_id: string;
  app_display_name?: string;
  device_display_name?: string;
  profile_tag?: string;
  lang?: string;
  data?: JsonObject;
  append?: boolean;
}

/**
 * Push rules (the client API, and a cache of each user's rules invalidated
 * over the bus), GET /notifications, notification counts and pushers
 * (stored here, sent to by delivery.ts). Methods
 * below "cross-domain API" are used by rooms and sync: the outcome of each
 * event is computed and stored by outcomes.ts, counts by unread-counts.ts.
 */
export class PushService {
  /** userId → the user's complete ruleset (defaults merged), or null for the unchanged defaults. */
  private readonly rules: LRUCache<string, RulesEntry>;
  /** Bumped by every invalidation, so a load that raced a change does not cache the old rules. */
  private generation = 0;
  private readonly outcomes: PushOutcomes;
  private readonly unread: UnreadCounts;
  private readonly delivery: PushDelivery;

  constructor(private readonly ctx: Context) {
    const max = (ctx.config.caches as { push_rules?: number }).push_rules ?? DEFAULT_RULES_CACHE_SIZE;
    this.rules = boundedCache(max, {}, { owner: ctx, name: 'push_rules' });
    this.outcomes = new PushOutcomes(ctx, { of: (users) => this.rulesOf(users), generation: () => this.generation });
    this.unread = new UnreadCounts(ctx);
    this.delivery = new PushDelivery(ctx, { unreadTotal: (userId) => this.unreadTotal(userId) });
    ctx.bus.onInvalidate((m) => {
      if (m.cache !== RULES_CACHE && m.cache !== ALL_KEYS) return;
      this.generation++;
      if (m.key === ALL_KEYS) this.rules.clear();
      else this.rules.delete(m.key);
    });
  }

  async start(): Promise<void> {
    this.delivery.start();
  }

  async stop(): Promise<void> {
    await this.delivery.stop();
  }

  // ---- push rules API ----

  /** The user's complete ruleset: server defaults merged with the user's rules and changes. */
  async getRuleset(userId: string): Promise<PushRuleSet> {
    return (await this.rulesOf([userId])).get(userId)!.set ?? mergeWithDefaults(null, userId, defaultRuleOptions(this.ctx.config));
  }

  async getRule(userId: string, kind: string, ruleId: string): Promise<PushRule> {
    if (!validateKind(kind)) throw invalidParam(`Unknown push rule kind: ${kind}`);
    const rule = findRule(await this.getRuleset(userId), kind, ruleId);
    if (!rule) throw notFound('The push rule was not found.');
    return rule;
  }

  async putRule(userId: string, kind: string, ruleId: string, body: NewPushRule, anchors: { before?: string; after?: string }): Promise<void> {
    await this.edit(userId, (r) => insertUserRule(r, kind, ruleId, body, anchors));
  }

  async deleteRule(userId: string, kind: string, ruleId: string): Promise<void> {
    await this.edit(userId, (r) => deleteUserRule(r, kind, ruleId));
  }

  async setRuleEnabled(userId: string, kind: string, ruleId: string, enabled: boolean): Promise<void> {
    await this.edit(userId, (r) => setEnabled(r, kind, ruleId, enabled));
  }

  async setRuleActions(userId: string, kind: string, ruleId: string, actions: PushAction[]): Promise<void> {
    await this.edit(userId, (r) => setActions(r, kind, ruleId, actions));
  }

  /**
   * Read-modify-write of the user's rules document in one transaction, then
   * the new ruleset goes to sync as the `m.push_rules` account data that
   * clients see in /sync (spec: "Push Rules: Events").
   */
  private async edit(userId: string, change: (rules: UserPushRules) => RuleEditResult<UserPushRules>): Promise<void> {
    await this.ctx.db.transaction().execute(async (trx) => {
      const row = await lockPushRulesRow(trx, this.ctx.dialect, userId);
      const next = editOrThrow(change(parseUserRules(row?.json)));
      await putPushRules(trx, { user_id: userId, json: JSON.stringify(next), updated_ts: this.ctx.now() });
      await this.ctx.bus.invalidateIn(trx, [{ cache: RULES_CACHE, key: userId }]);
    });
    this.ctx.bus.invalidate({ cache: RULES_CACHE, key: userId });
    try {
      const global = (await this.getRuleset(userId)) as unknown as JsonObject;
      await this.ctx.services.sync.setAccountData(userId, null, 'm.push_rules', { global });
    } catch (e) {
      if (!isUnimplemented(e)) this.ctx.logger.error({ err: e, userId }, 'publishing m.push_rules account data failed');
    }
  }

  /** Rules of several users (null sets for the unchanged defaults): from the cache, the rest in one query per 500. */
  private async rulesOf(userIds: string[]): Promise<Map<string, RulesEntry>> {
    const out = new Map<string, RulesEntry>();
    const missing: string[] = [];
    for (const u of userIds) {
      const r = this.rules.get(u);
      if (r) out.set(u, r);
      else missing.push(u);
    }
    if (missing.length === 0) return out;
    const generation = this.generation;
    const rows = new Map((await getPushRulesRows(this.ctx.db, missing)).map((r) => [r.user_id, r.json]));
    for (const u of missing) {
      const stored = parseUserRules(rows.get(u));
      const entry: RulesEntry = { set: usesDefaultsOnly(stored) ? null : mergeWithDefaults(stored, u, defaultRuleOptions(this.ctx.config)) };
      out.set(u, entry);
      if (generation === this.generation) this.rules.set(u, entry);
    }
    return out;
  }

  // ---- pushers ----

  async getPushers(userId: string): Promise<JsonObject[]> {
    return (await getPushers(this.ctx.db, userId)).map((p) => {
      const out: JsonObject = {
        pushkey: p.pushkey,
        kind: p.kind,
        app_id: p.app_id,
        app_display_name: p.app_display_name,
        device_display_name: p.device_display_name,
        lang: p.lang,
        data: JSON.parse(p.data) as JsonObject,
      };
      if (p.profile_tag !== null) out.profile_tag = p.profile_tag;
      return out;
    });
  }

  /** POST /pushers/set. The pusher remembers the device that set it (removePushersOfOtherDevices). */
  async setPusher(userId: string, deviceId: string, body: PusherBody): Promise<void> {
    if (body.app_id.length > 64) throw invalidParam('app_id is longer than 64 characters');
    if (Buffer.byteLength(body.pushkey, 'utf8') > 512) throw invalidParam('pushkey is longer than 512 bytes');
    if (body.kind === null) {
      await deletePusher(this.ctx.db, userId, body.app_id, body.pushkey);
      return;
    }
    const missing = (['app_display_name', 'device_display_name', 'lang', 'data'] as const).filter((k) => body[k] === undefined);
    if (missing.length > 0) throw missingParam(`Missing parameters: ${missing.join(', ')}`);
    if (body.kind !== 'http') throw invalidParam(`Unsupported pusher kind: ${body.kind}`);
    const url = body.data!.url;
    if (typeof url !== 'string') throw missingParam('data.url is required for http pushers');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalidParam('data.url is not a URL');
    }
    if ((parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || parsed.pathname !== '/_matrix/push/v1/notify') {
      throw invalidParam('data.url must be an HTTP(S) URL with the path /_matrix/push/v1/notify');
    }
    await this.ctx.db.transaction().execute(async (trx) => {
      if (!body.append) await deletePushersOfOthers(trx, userId, body.app_id, body.pushkey);
      await putPusher(trx, {
        user_id: userId,
        app_id: body.app_id,
        pushkey: body.pushkey,
        kind: body.kind!,
        app_display_name: body.app_display_name!,
        device_display_name: body.device_display_name!,
        profile_tag: body.profile_tag ?? null,
        lang: body.lang!,
        data: JSON.stringify(body.data),
        ts: this.ctx.now(),
        device_id: deviceId,
      });
    });
  }

  /** A password change that logged out the user's other sessions removes their pushers too (in the change's transaction). */
  async removePushersOfOtherDevices(trx: Tx, userId: string, deviceId: string): Promise<void> {
    await deletePushersOfOtherDevices(trx, userId, deviceId);
  }

  /** Devices deleted (logout, device deletion, deactivation) take their pushers with them, in the deleting transaction. */
  async removePushersOfDevices(trx: Tx, userId: string, deviceIds: string[]): Promise<void> {
    await deletePushersOfDevices(trx, userId, deviceIds);
  }

  /** The user's notifications not yet read, across the rooms they are joined to (`counts.unread` of a push). */
  private async unreadTotal(userId: string): Promise<number> {
    const counts = await this.unread.get(userId, await selectOpenSpanRooms(this.ctx.db, userId));
    let total = 0;
    for (const c of counts.values()) total += c.notification_count;
    return total;
  }

  // ---- notifications ----

  /**
   * GET /notifications. Rules are no longer per device (spec: push module), so the profile a
   * notification matched under is the one the asking device's pusher runs as: its `profile_tag`,
   * given with every notification when the device has a pusher that set one.
   */
  async getNotifications(
    userId: string,
    opts: { from?: string; limit?: number; only?: string },
    deviceId?: string,
  ): Promise<{ notifications: JsonObject[]; next_token?: string }> {
    let before: number | undefined;
    if (opts.from !== undefined && opts.from !== '') {
      if (!/^\d+$/.test(opts.from)) throw invalidParam('from is not a token from this endpoint');
      before = Number(opts.from);
    }
    const limit = Math.min(Math.max(opts.limit ?? 20, 1), 100);
    const rows = await this.notificationRows(userId, { before: before ?? Number.MAX_SAFE_INTEGER, limit: limit + 1, minLevel: opts.only === 'highlight' ? 2 : 1 });
    const page = rows.slice(0, limit);
    let events = new Map<string, ClientEvent>();
    if (page.length > 0) {
      try {
        events = await this.ctx.services.rooms.getEvents(page.map((r) => r.event_id), { userId });
      } catch (e) {
        if (!isUnimplemented(e)) throw e;
      }
    }
    const readUpto = await selectReadUpto(this.ctx.db, userId, [...new Set(page.map((r) => r.room_id))]);
    const profileTag =
      deviceId === undefined || page.length === 0
        ? undefined
        : (await getPushers(this.ctx.db, userId)).find((p) => p.device_id === deviceId && p.profile_tag !== null)?.profile_tag ?? undefined;
    const notifications: JsonObject[] = [];
    for (const r of page) {
      const ev = events.get(r.event_id);
      if (!ev) continue;
      const { room_id: _roomId, ...withoutRoom } = ev;
      void _roomId;
      notifications.push({
        actions: JSON.parse(r.actions) as JsonObject[],
        event: withoutRoom as unknown as JsonObject,
        read: (readUpto.get(r.room_id) ?? 0) >= r.stream_pos,
        room_id: r.room_id,
        ts: r.ts,
        ...(profileTag !== undefined ? { profile_tag: profileTag } : {}),
      });
    }
    const out: { notifications: JsonObject[]; next_token?: string } = { notifications };
    if (rows.length > limit) out.next_token = String(page[page.length - 1].stream_pos);
    return out;
  }

  /** The newest of the user's notifications in every room they have been joined to: each room's newest, merged. */
  private async notificationRows(userId: string, opts: { before: number; limit: number; minLevel: number }): Promise<NotificationRow[]> {
    const rooms = await selectSpanRooms(this.ctx.db, userId);
    const rows: NotificationRow[] = [];
    for (let i = 0; i < rooms.length; i += 16) {
      const part = await Promise.all(rooms.slice(i, i + 16).map((roomId) => selectRoomNotifications(this.ctx.db, userId, roomId, opts)));
      for (const p of part) rows.push(...p);
    }
    return rows.sort((a, b) => b.stream_pos - a.stream_pos).slice(0, opts.limit);
  }

  // ---- cross-domain API ----

  /** The push outcome of a new event, before the pipeline's transaction (PushOutcomes.computeActions). */
  computeActions(
    event: ClientEvent,
    room: { members: string[]; powerLevels: Record<string, unknown> | undefined; displayNames: Map<string, string> },
  ): Promise<PushOutcome[]> {
    return this.outcomes.computeActions(event, room);
  }

  /**
   * Events withdrawn after they were stored (rejected or soft-failed once a partial state was
   * filled in) notify no one any more: their outcomes go, and the room's unread counts are
   * counted again (every node; this one once `outcomesForgotten` runs after commit).
   */
  async forgetOutcomes(trx: Tx, roomId: string, positions: readonly number[]): Promise<void> {
    if (positions.length === 0) return;
    await deleteOutcomesAt(trx, roomId, positions);
    await this.ctx.bus.invalidateIn(trx, [{ cache: UNREAD_CACHE, key: roomId }]);
  }

  /** After the commit of forgetOutcomes: this node counts the room's unread events again. */
  outcomesForgotten(roomId: string): void {
    this.ctx.bus.invalidate({ cache: UNREAD_CACHE, key: roomId });
  }

  /** Membership changes written with a batch (member events and state resets): see PushOutcomes.storeMembershipChanges. */
  storeMembershipChanges(trx: Tx, roomId: string, changes: ReadonlyArray<{ userId: string; joined: boolean; pos: number }>): Promise<void> {
    return this.outcomes.storeMembershipChanges(trx, roomId, changes);
  }

  /** Stores computed outcomes inside the pipeline's transaction, once the event has its stream position. */
  storeActions(trx: Tx, roomId: string, eventId: string, streamPos: number, rows: PushOutcome[]): Promise<void> {
    return this.outcomes.storeActions(trx, roomId, eventId, streamPos, rows);
  }

  /** As storeActions, written to a statement sink (the pipeline's send fast paths). */
  storeActionsVia(tx: StatementSink, roomId: string, eventId: string, streamPos: number, rows: PushOutcome[]): void {
    this.outcomes.storeActionsVia(tx, roomId, eventId, streamPos, rows);
  }

  /**
   * Unread counts per room: the events after the user's read receipt that notify them (UnreadCounts);
   * with `threads`, the main timeline's and each thread's apart.
   */
  getUnreadCounts(userId: string, roomIds: string[], opts: { threads?: boolean } = {}): Promise<Map<string, RoomUnread>> {
    return this.unread.get(userId, roomIds, opts);
  }

  /** getUnreadCounts for several users in one query; keyed by user, then room. Asks of one user must agree on `threads`. */
  getUnreadCountsForUsers(asks: UnreadAsk[]): Promise<Map<string, Map<string, RoomUnread>>> {
    return this.unread.getForUsers(asks);
  }

  /**
   * The user read up to the event at `streamPos` in a room (m.read or m.read.private): the whole
   * room for an unthreaded receipt, one thread for a threaded one (`threadId` a root, or 'main').
   */
  async onReadUpTo(userId: string, roomId: string, streamPos: number, threadId: string | null = null): Promise<void> {
    if (threadId === null) await advanceReadUpto(this.ctx.db, userId, roomId, streamPos);
    else await advanceThreadReadUpto(this.ctx.db, userId, roomId, threadId, streamPos);
  }
}
