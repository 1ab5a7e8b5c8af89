import type { LRUCache } from 'lru-cache';
import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';
import { evaluatePushRules } from '../core/push/evaluator.js';
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
import type { ClientEventLike, PushAction, PushRule, PushRuleSet } from '../core/push/types.js';
import { serverNameOf } from '../core/ids.js';
import type { ClientEvent, JsonObject } from '../core/types.js';
import type { Tx } from '../db/schema.js';
import { MatrixError, invalidParam, missingParam, notFound } from '../http/errors.js';
import { advanceReadUpto, advanceReadUptoVia, insertPushActions, insertPushActionsVia, listNotifications } from './push-actions-store.js';
import { deletePusher, deletePushersOfOthers, getPushers, putPusher } from './pushers-store.js';
import { getPushRulesRows, lockPushRulesRow, putPushRules } from './push-rules-store.js';
import { SenderPower } from './sender-power.js';
import type { EventPushActionRow } from './tables.js';
import { selectUnreadSince } from './unread-counts-store.js';
import type { StatementSink } from '../db/pg-pipeline.js';

/** One user's push evaluation result for one event, to be stored with the event. */
export interface PushActionRow {
  userId: string;
  notify: boolean;
  highlight: boolean;
}

/**
 * What computeActions returns: notifying rows carry the winning rule's
 * actions (GET /notifications shows them); a local sender gets a
 * non-notifying row with `sentByUser`, because sending an event marks the
 * room read up to it (spec: "Marking notifications as read").
 */
interface EvaluatedActionRow extends PushActionRow {
  actions?: PushAction[];
  sentByUser?: boolean;
}

/** Unread counts relative to the read position `readUpto`, complete for stream positions up to `upTo`. */
interface UnreadMemo {
  readUpto: number;
  upTo: number;
  notify: number;
  highlight: number;
}

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

function toLevel(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  // Old room versions allow levels as strings.
  if (typeof v === 'string' && /^[+-]?\d+$/.test(v.trim())) return Number(v);
  return undefined;
}

function mentionsRoom(event: ClientEvent): boolean {
  const m = event.content['m.mentions'];
  return typeof m === 'object' && m !== null && !Array.isArray(m) && m.room === true;
}

const customPermissionRules = new WeakMap<PushRuleSet, boolean>();

/** Whether a user-defined rule looks at the sender's power (the default one only does for @room mentions). */
function hasCustomPermissionRule(set: PushRuleSet): boolean {
  let v = customPermissionRules.get(set);
  if (v === undefined) {
    v = [...set.override, ...set.underride].some(
      (r) => !r.default && r.enabled && (r.conditions ?? []).some((c) => c.kind === 'sender_notification_permission'),
    );
    customPermissionRules.set(set, v);
  }
  return v;
}

function notificationLevels(powerLevels: Record<string, unknown> | undefined): Record<string, number> {
  const n = powerLevels?.notifications;
  const out: Record<string, number> = {};
  if (n && typeof n === 'object' && !Array.isArray(n)) {
    for (const [k, v] of Object.entries(n)) {
      const l = toLevel(v);
      if (l !== undefined) out[k] = l;
    }
  }
  return out;
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
 * Push rules (the client API), notification counts and pushers (stored; HTTP
 * delivery to push gateways is not implemented yet). Methods below
 * "cross-domain API" are used by rooms and sync.
 */
export class PushService {
  /** userId → the user's complete ruleset (defaults merged). */
  private readonly rules: LRUCache<string, PushRuleSet>;
  /** Bumped by every invalidation, so a load that raced a change does not cache the old rules. */
  private generation = 0;
  private readonly senderPower: SenderPower;
  /** Unread counts per `user\u0000room` (see getUnreadCounts). */
  private readonly unread = boundedCache<string, UnreadMemo>(50_000);

  constructor(private readonly ctx: Context) {
    const max = (ctx.config.caches as { push_rules?: number }).push_rules ?? DEFAULT_RULES_CACHE_SIZE;
    this.rules = boundedCache(max);
    this.senderPower = new SenderPower(ctx);
    ctx.bus.onInvalidate((m) => {
      if (m.cache !== RULES_CACHE) return;
      this.generation++;
      this.rules.delete(m.key);
    });
  }

  // ---- push rules API ----

  /** The user's complete ruleset: server defaults merged with the user's rules and changes. */
  async getRuleset(userId: string): Promise<PushRuleSet> {
    return (await this.rulesetsOf([userId])).get(userId)!;
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
    });
    this.ctx.bus.invalidate({ cache: RULES_CACHE, key: userId });
    try {
      const global = (await this.getRuleset(userId)) as unknown as JsonObject;
      await this.ctx.services.sync.setAccountData(userId, null, 'm.push_rules', { global });
    } catch (e) {
      if (!isUnimplemented(e)) this.ctx.logger.error({ err: e, userId }, 'publishing m.push_rules account data failed');
    }
  }

  /** Rulesets for several users: from the cache, the rest in one query. */
  private async rulesetsOf(userIds: string[]): Promise<Map<string, PushRuleSet>> {
    const out = new Map<string, PushRuleSet>();
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
      const set = mergeWithDefaults(parseUserRules(rows.get(u)), u);
      out.set(u, set);
      if (generation === this.generation) this.rules.set(u, set);
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

  /** POST /pushers/set. Pushers are stored and listed; nothing is sent to push gateways yet. */
  async setPusher(userId: string, body: PusherBody): Promise<void> {
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
      });
    });
  }

  // ---- notifications ----

  async getNotifications(
    userId: string,
    opts: { from?: string; limit?: number; only?: string },
  ): Promise<{ notifications: JsonObject[]; next_token?: string }> {
    let before: number | undefined;
    if (opts.from !== undefined && opts.from !== '') {
      if (!/^\d+$/.test(opts.from)) throw invalidParam('from is not a token from this endpoint');
      before = Number(opts.from);
    }
    const limit = Math.min(Math.max(opts.limit ?? 20, 1), 100);
    const rows = await listNotifications(this.ctx.db, userId, { before, limit: limit + 1, onlyHighlight: opts.only === 'highlight' });
    const page = rows.slice(0, limit);
    let events = new Map<string, ClientEvent>();
    if (page.length > 0) {
      try {
        events = await this.ctx.services.rooms.getEvents(page.map((r) => r.event_id), { userId });
      } catch (e) {
        if (!isUnimplemented(e)) throw e;
      }
    }
    const notifications: JsonObject[] = [];
    for (const r of page) {
      const ev = events.get(r.event_id);
      if (!ev) continue;
      const { room_id: _roomId, ...withoutRoom } = ev;
      void _roomId;
      notifications.push({
        actions: JSON.parse(r.actions) as JsonObject[],
        event: withoutRoom as unknown as JsonObject,
        read: r.read_upto !== null && r.read_upto >= r.stream_pos,
        room_id: r.room_id,
        ts: r.ts,
      });
    }
    const out: { notifications: JsonObject[]; next_token?: string } = { notifications };
    if (rows.length > limit) out.next_token = String(page[page.length - 1].stream_pos);
    return out;
  }

  // ---- cross-domain API ----

  /**
   * Evaluates every joined local member's push rules for a new event (not
   * the sender). Called by the pipeline BEFORE its transaction: it may read
   * the database. `members` are the room's joined users; `powerLevels` the
   * room's current power levels content (or undefined); `displayNames` the
   * members' room display names.
   *
   * A local sender also gets a non-notifying row: storing it moves their
   * read position to the event, so the pipeline must store every row.
   */
  async computeActions(
    event: ClientEvent,
    room: { members: string[]; powerLevels: Record<string, unknown> | undefined; displayNames: Map<string, string> },
  ): Promise<PushActionRow[]> {
    const out: EvaluatedActionRow[] = [];
    if (serverNameOf(event.sender) === this.ctx.serverName) out.push({ userId: event.sender, notify: false, highlight: false, sentByUser: true });
    const users = room.members.filter((m) => m !== event.sender && serverNameOf(m) === this.ctx.serverName);
    if (users.length === 0) return out;
    const rulesets = await this.rulesetsOf(users);
    // Finding the sender's level may read the room's create event: only when a rule can ask for it.
    const needsLevel = mentionsRoom(event) || users.some((u) => hasCustomPermissionRule(rulesets.get(u)!));
    const base = {
      roomMemberCount: room.members.length,
      senderPowerLevel: needsLevel ? await this.senderPower.level(event.room_id, event.sender, room.powerLevels) : 0,
      notificationPowerLevels: notificationLevels(room.powerLevels),
    };
    const ev = event as unknown as ClientEventLike;
    for (const userId of users) {
      const r = evaluatePushRules(rulesets.get(userId)!, ev, { ...base, userId, displayName: room.displayNames.get(userId) });
      if (r.notify) out.push({ userId, notify: true, highlight: r.highlight, actions: r.actions });
    }
    return out;
  }

  /** Stores computed actions inside the pipeline's transaction, once the event has its stream position. */
  async storeActions(trx: Tx, roomId: string, eventId: string, streamPos: number, rows: PushActionRow[]): Promise<void> {
    const w = this.actionWrites(roomId, eventId, streamPos, rows);
    for (const userId of w.readers) await advanceReadUpto(trx, userId, roomId, streamPos);
    if (w.notifications.length > 0) await insertPushActions(trx, w.notifications);
  }

  /** As storeActions, written to a statement sink (the pipeline's send fast paths). */
  storeActionsVia(tx: StatementSink, roomId: string, eventId: string, streamPos: number, rows: PushActionRow[]): void {
    const w = this.actionWrites(roomId, eventId, streamPos, rows);
    for (const userId of w.readers) advanceReadUptoVia(tx, userId, roomId, streamPos);
    insertPushActionsVia(tx, w.notifications);
  }

  private actionWrites(roomId: string, eventId: string, streamPos: number, rows: PushActionRow[]) {
    const readers: string[] = [];
    const notifications: EventPushActionRow[] = [];
    let ts: number | undefined;
    for (const r of rows as EvaluatedActionRow[]) {
      // "When the user updates their read receipt (either by using the API or by sending an event)".
      if (r.sentByUser) readers.push(r.userId);
      if (!r.notify) continue;
      ts ??= this.ctx.now();
      notifications.push({
        user_id: r.userId,
        room_id: roomId,
        event_id: eventId,
        stream_pos: streamPos,
        notify: 1,
        highlight: r.highlight ? 1 : 0,
        actions: JSON.stringify(r.actions ?? (r.highlight ? ['notify', { set_tweak: 'highlight' }] : ['notify'])),
        ts,
      });
    }
    return { readers, notifications };
  }

  /**
   * Unread counts per room: notifying events after the user's read receipt.
   * One query for all rooms. Counts are kept per (user, room) together with
   * the read position they are relative to and the stream position they are
   * complete up to, so the next call only reads the rows after that (a user
   * who never reads a busy room would otherwise cost a scan of every row on
   * each /sync). Push action rows are never changed or deleted, and they carry
   * their event's stream position, committed in position order: every row at
   * or below the highest one a statement sees is visible to it.
   */
  async getUnreadCounts(userId: string, roomIds: string[]): Promise<Map<string, { notification_count: number; highlight_count: number }>> {
    const out = new Map(roomIds.map((r) => [r, { notification_count: 0, highlight_count: 0 }]));
    if (roomIds.length === 0) return out;
    const key = (roomId: string) => `${userId}\u0000${roomId}`;
    // The memo each bound came from: another call may replace it meanwhile.
    const count = async (bounds: { roomId: string; memo: UnreadMemo | undefined }[]) => {
      const rows = await selectUnreadSince(this.ctx.db, userId, bounds.map((b) => ({ roomId: b.roomId, after: b.memo?.upTo ?? 0 })));
      const memos = new Map(bounds.map((b) => [b.roomId, b.memo]));
      const retry: { roomId: string; memo: undefined }[] = [];
      for (const r of rows) {
        const memo = memos.get(r.room_id);
        const top = r.max_pos ?? 0;
        let next: UnreadMemo;
        if (!memo) {
          next = { readUpto: r.read_upto, upTo: Math.max(r.read_upto, top), notify: r.notify, highlight: r.highlight };
        } else if (memo.readUpto === r.read_upto) {
          next = { readUpto: r.read_upto, upTo: Math.max(memo.upTo, top), notify: memo.notify + r.notify, highlight: memo.highlight + r.highlight };
        } else if (r.read_upto >= memo.upTo) {
          // Read past everything counted before: the rows after the read position are all in this answer.
          next = { readUpto: r.read_upto, upTo: Math.max(r.read_upto, top), notify: r.notify, highlight: r.highlight };
        } else {
          // Read part of what was counted: count again from the read position.
          retry.push({ roomId: r.room_id, memo: undefined });
          continue;
        }
        this.unread.set(key(r.room_id), next);
        out.set(r.room_id, { notification_count: next.notify, highlight_count: next.highlight });
      }
      return retry;
    };
    const retry = await count(roomIds.map((roomId) => ({ roomId, memo: this.unread.get(key(roomId)) })));
    if (retry.length > 0) await count(retry);
    return out;
  }

  /** The user read up to the event at `streamPos` in a room (m.read or m.read.private). */
  async onReadUpTo(userId: string, roomId: string, streamPos: number): Promise<void> {
    await advanceReadUpto(this.ctx.db, userId, roomId, streamPos);
  }
}
