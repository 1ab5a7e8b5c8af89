/**
 * What push stores with each event: the push rules of the room's joined
 * local members evaluated for it (the server defaults once, then only the
 * members the event names or who have rules of their own:
 * core/push/room-evaluation.ts), as one outcome for the room and its
 * exceptions, and the membership spans that say whom the outcome applies to
 * (push-outcomes-store.ts explains the layout). The pipeline calls
 * computeActions before its transaction and storeActions inside it.
 */
import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';
import type { PushEvaluation } from '../core/push/evaluator.js';
import { defaultPushRules, type DefaultRuleOptions } from '../core/push/default-rules.js';
import { evaluatePushRules } from '../core/push/evaluator.js';
import { evaluateForMembers, type RoomMember } from '../core/push/room-evaluation.js';
import type { ClientEventLike, PushRuleSet } from '../core/push/types.js';
import { serverNameOf } from '../core/ids.js';
import type { ClientEvent } from '../core/types.js';
import type { StatementSink } from '../db/pg-pipeline.js';
import type { Prepared } from '../db/prepared.js';
import type { Tx } from '../db/schema.js';
import { closeSpansVia, openSpanVia, selectOpenMembers } from './member-spans-store.js';
import { insertOutcomeVia } from './push-outcomes-store.js';
import { advanceReadUptoVia } from './read-upto-store.js';
import { advanceThreadReadUptoVia } from './thread-read-store.js';
import { SenderPower } from './sender-power.js';
import { ThreadSubscriptions } from '../thread-subscriptions/service.js';

/**
 * What push stores with one event (computeActions, then storeActions inside
 * the event's transaction); see push-outcomes-store.ts for the layout.
 */
export interface PushOutcome {
  /** A local sender: sending an event marks the room read up to it (spec: "Marking notifications as read"). */
  reader: string | null;
  /** The thread the event is in: then it marks only that thread read for its sender, as a threaded receipt would. */
  readerThread?: string | null;
  /** The event's outcome for the room, when it notifies anyone. */
  notifies: {
    sender: string;
    base: number;
    actions: string | null;
    exceptions: { userId: string; level: number; actions: string | null; invitee?: boolean }[];
    /** The thread root when the event is in a thread; null in the main timeline. */
    threadId: string | null;
  } | null;
  /** Local members joined before the event who have no open span (joined before spans were kept, or on another path). */
  heal: string[];
  /** A local user whose membership starts with this event (joined after it). */
  joined?: string;
  /** A local user whose membership ends with this event. */
  left?: string;
}

/** The pipeline's name for what computeActions returns: a list of zero or one PushOutcome. */
export type PushActionRow = PushOutcome;

/** Local members of a room as the pipeline hands them, worked out once per member list. */
interface MemberView {
  locals: string[];
  joined: Set<string>;
  /** The locals with their rules, while no user's rules changed (`generation`) and for these display names. */
  prepared?: PreparedMembers;
  /** The open spans this list was last found complete against (no member without one). */
  spansChecked?: OpenSpans;
}

interface PreparedMembers {
  generation: number;
  displayNames: Map<string, string>;
  members: RoomMember[];
  /** Some member has a rule of their own that reads the sender's power. */
  custom: boolean;
}

/** Where the members' rules come from: PushService's cache, and its count of invalidations. */
export interface MemberRules {
  of(userIds: string[]): Promise<Map<string, RulesEntry>>;
  generation(): number;
}

/** Users with an open span in a room; `dirty` when a span may have been written since it was read. */
interface OpenSpans {
  open: Set<string>;
  dirty: boolean;
}

/** The rules a member is evaluated with: null for the unchanged server defaults (shared by all such members). */
export interface RulesEntry {
  set: PushRuleSet | null;
}

function toLevel(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  // Old room versions allow levels as strings.
  if (typeof v === 'string' && /^[+-]?\d+$/.test(v.trim())) return Number(v);
  return undefined;
}

/** 0 nothing, 1 notify, 2 notify and highlight (push_outcomes.base, push_outcome_exceptions.level). */
function level(r: PushEvaluation): number {
  return r.highlight ? 2 : r.notify ? 1 : 0;
}

/** The root of the thread the event is in (an `m.thread` relation, spec: modules/threading), or null. */
function threadOf(event: ClientEvent): string | null {
  const r = event.content['m.relates_to'];
  if (typeof r !== 'object' || r === null || Array.isArray(r) || r.rel_type !== 'm.thread') return null;
  return typeof r.event_id === 'string' ? r.event_id : null;
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

/** The optional default rules this server serves (config `push`). */
export function defaultRuleOptions(config: Context['config']): DefaultRuleOptions {
  return { threadSubscriptions: config.push.thread_subscription_rules };
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

export class PushOutcomes {
  private readonly senderPower: SenderPower;
  private readonly threadSubscriptions: ThreadSubscriptions;
  private readonly memberViews = new WeakMap<readonly string[], MemberView>();
  /** Per room: who has an open span, for healing (see withoutOpenSpan). */
  private readonly openSpans = boundedCache<string, OpenSpans>(10_000);

  constructor(
    private readonly ctx: Context,
    private readonly rules: MemberRules,
  ) {
    this.senderPower = new SenderPower(ctx);
    this.threadSubscriptions = new ThreadSubscriptions(ctx);
  }

  /**
   * Evaluates the push rules of the room's joined local members for a new
   * event (core/push/room-evaluation: the server defaults once, then only the
   * members the event names or who have rules of their own). Called by the
   * pipeline BEFORE its transaction: it may read the database. `members` are
   * the room's joined users before the event; `powerLevels` the room's power
   * levels content (or undefined); `displayNames` the members' room display
   * names.
   *
   * Returns what storeActions must write with the event, in a list of zero
   * or one: the outcome when it notifies anyone, the sender's read position,
   * and the membership spans the event opens or closes.
   */
  async computeActions(
    event: ClientEvent,
    room: { members: string[]; powerLevels: Record<string, unknown> | undefined; displayNames: Map<string, string> },
  ): Promise<PushOutcome[]> {
    const roomId = event.room_id;
    if (roomId === undefined) return [];
    const view = this.memberView(room.members);
    const out: PushOutcome = { reader: this.isLocal(event.sender) ? event.sender : null, notifies: null, heal: [] };
    if (out.reader !== null) out.readerThread = threadOf(event);
    const sk = event.state_key;
    if (event.type === 'm.room.member' && typeof sk === 'string' && this.isLocal(sk)) {
      const was = view.joined.has(sk);
      const now = event.content.membership === 'join';
      if (!was && now) out.joined = sk;
      else if (was && !now) out.left = sk;
    }
    if (view.locals.length > (out.reader !== null && view.joined.has(out.reader) ? 1 : 0)) {
      out.notifies = await this.evaluate(event, room, view);
      // Every member the stored outcome can apply to needs an open span.
      if (out.notifies) out.heal = await this.withoutOpenSpan(roomId, view);
    }
    const invitee = this.inviteeOf(event, view);
    if (invitee !== null) {
      const r = await this.evaluateInvitee(event, room, invitee);
      if (r.notify) {
        out.notifies ??= { sender: event.sender, base: 0, actions: null, exceptions: [], threadId: null };
        out.notifies.exceptions.push({ userId: invitee, level: level(r), actions: JSON.stringify(r.actions), invitee: true });
      }
    }
    if (out.joined !== undefined || out.left !== undefined) {
      const spans = this.openSpans.get(roomId);
      if (spans) {
        spans.dirty = true;
        if (out.left !== undefined) spans.open.delete(out.left);
      }
    }
    if (out.reader === null && out.notifies === null && out.joined === undefined && out.left === undefined) return [];
    return [out];
  }

  /** The local user an invite event invites, when they are not joined (joined members are evaluated with the room). */
  private inviteeOf(event: ClientEvent, view: MemberView): string | null {
    const sk = event.state_key;
    if (event.type !== 'm.room.member' || typeof sk !== 'string' || event.content.membership !== 'invite') return null;
    if (!this.isLocal(sk) || sk === event.sender || view.joined.has(sk)) return null;
    return sk;
  }

  /** The invitee's own rules for the invite (`.m.rule.invite_for_me` by default). */
  private async evaluateInvitee(
    event: ClientEvent,
    room: { members: string[]; powerLevels: Record<string, unknown> | undefined },
    userId: string,
  ): Promise<PushEvaluation> {
    const set = (await this.rules.of([userId])).get(userId)?.set ?? null;
    const senderPowerLevel = await this.senderPower.level(event.room_id!, event.sender, room.powerLevels);
    return evaluatePushRules(set ?? defaultPushRules(userId, defaultRuleOptions(this.ctx.config)), event as unknown as ClientEventLike, {
      roomMemberCount: room.members.length,
      senderPowerLevel,
      notificationPowerLevels: notificationLevels(room.powerLevels),
      userId,
    });
  }

  private isLocal(userId: string): boolean {
    return serverNameOf(userId) === this.ctx.serverName;
  }

  /** The local members of a member list (the pipeline shares one list per room head): once per list. */
  private memberView(members: string[]): MemberView {
    let v = this.memberViews.get(members);
    if (!v) {
      const joined = new Set(members);
      v = { locals: members.filter((m) => this.isLocal(m)), joined };
      this.memberViews.set(members, v);
    }
    return v;
  }

  /** The room-wide outcome and its exceptions, or null when the event notifies nobody. */
  private async evaluate(
    event: ClientEvent,
    room: { members: string[]; powerLevels: Record<string, unknown> | undefined; displayNames: Map<string, string> },
    view: MemberView,
  ): Promise<PushOutcome['notifies']> {
    const { members, custom } = await this.prepare(view, room.displayNames);
    // Finding the sender's level may read the room's create event: only when a rule can ask for it.
    const needsLevel = custom || mentionsRoom(event);
    const shared = {
      roomMemberCount: room.members.length,
      senderPowerLevel: needsLevel ? await this.senderPower.level(event.room_id, event.sender, room.powerLevels) : 0,
      notificationPowerLevels: notificationLevels(room.powerLevels),
    };
    const threadId = threadOf(event);
    const options = defaultRuleOptions(this.ctx.config);
    // MSC4306: in a thread, whoever is subscribed to it is notified by its own rule.
    const subscribers = threadId === null || !options.threadSubscriptions ? undefined : await this.threadSubscriptions.subscribersOf(event.room_id!, threadId);
    const { base, exceptions } = evaluateForMembers(event as unknown as ClientEventLike, shared, members, subscribers, options);
    let anyone = base.notify;
    const rows: { userId: string; level: number; actions: string | null }[] = [];
    for (const [userId, r] of exceptions) {
      if (r.notify) anyone = true;
      rows.push({ userId, level: level(r), actions: r.notify ? JSON.stringify(r.actions) : null });
    }
    if (!anyone) return null;
    return { sender: event.sender, base: level(base), actions: base.notify ? JSON.stringify(base.actions) : null, exceptions: rows, threadId };
  }

  /** The members with their rules: looked up once per member list, again after any user's rules changed. */
  private async prepare(view: MemberView, displayNames: Map<string, string>): Promise<PreparedMembers> {
    const generation = this.rules.generation();
    const hit = view.prepared;
    if (hit && hit.generation === generation && hit.displayNames === displayNames) return hit;
    const rules = await this.rules.of(view.locals);
    let custom = false;
    const members = view.locals.map((userId): RoomMember => {
      const set = rules.get(userId)!.set;
      if (set !== null && hasCustomPermissionRule(set)) custom = true;
      return { userId, rules: set, displayName: displayNames.get(userId) };
    });
    const prepared = { generation, displayNames, members, custom };
    // Rules that changed while they were read are used for this event only.
    if (this.rules.generation() === generation) view.prepared = prepared;
    return prepared;
  }

  /**
   * Members without an open span in the room: their span is opened just
   * before this event. Spans are opened by join events, so this finds the
   * members who joined before spans were kept (an upgraded server) or whose
   * join this node did not see; the set is read from the database once, and
   * again after any span may have changed.
   */
  private async withoutOpenSpan(roomId: string, view: MemberView): Promise<string[]> {
    let spans = this.openSpans.get(roomId);
    if (!spans || spans.dirty) {
      spans = { open: new Set(await selectOpenMembers(this.ctx.db, roomId)), dirty: false };
      this.openSpans.set(roomId, spans);
    }
    if (view.spansChecked === spans) return [];
    const missing = view.locals.filter((u) => !spans.open.has(u));
    if (missing.length > 0) {
      // Written with the event: until a read confirms it, the set is not to be trusted.
      for (const u of missing) spans.open.add(u);
      spans.dirty = true;
    } else {
      view.spansChecked = spans;
    }
    return missing;
  }

  /**
   * Membership changes a batch writes, whatever made them: a member event,
   * or state resolution dropping or restoring a membership without one (a
   * state reset). Spans follow them, so a reset member stops being notified;
   * for member events this repeats what storeActions wrote, harmlessly.
   */
  async storeMembershipChanges(trx: Tx, roomId: string, changes: ReadonlyArray<{ userId: string; joined: boolean; pos: number }>): Promise<void> {
    const local = changes.filter((c) => this.isLocal(c.userId));
    if (local.length === 0) return;
    const statements: [Prepared<object, unknown>, object][] = [];
    const sink: StatementSink = { run: (q, p) => statements.push([q as Prepared<object, unknown>, p]) };
    for (const c of local) {
      if (c.joined) openSpanVia(sink, c.userId, roomId, c.pos);
      else closeSpansVia(sink, c.userId, roomId, c.pos);
    }
    for (const [q, p] of statements) await q.execute(trx, p);
    const spans = this.openSpans.get(roomId);
    if (spans) spans.dirty = true;
  }

  /** Stores an event's outcome inside the pipeline's transaction, once the event has its stream position. */
  async storeActions(trx: Tx, roomId: string, eventId: string, streamPos: number, rows: PushOutcome[]): Promise<void> {
    const statements: [Prepared<object, unknown>, object][] = [];
    this.storeActionsVia({ run: (q, p) => statements.push([q as Prepared<object, unknown>, p]) }, roomId, eventId, streamPos, rows);
    for (const [q, p] of statements) await q.execute(trx, p);
  }

  /** As storeActions, written to a statement sink (the pipeline's send fast paths). */
  storeActionsVia(tx: StatementSink, roomId: string, eventId: string, streamPos: number, rows: PushOutcome[]): void {
    for (const o of rows) {
      // "When the user updates their read receipt (either by using the API or by sending an event)".
      if (o.reader !== null) {
        if (o.readerThread) advanceThreadReadUptoVia(tx, o.reader, roomId, o.readerThread, streamPos);
        else advanceReadUptoVia(tx, o.reader, roomId, streamPos);
      }
      for (const u of o.heal) openSpanVia(tx, u, roomId, streamPos - 1);
      if (o.joined !== undefined) openSpanVia(tx, o.joined, roomId, streamPos);
      if (o.left !== undefined) closeSpansVia(tx, o.left, roomId, streamPos);
      if (o.notifies) {
        const n = o.notifies;
        insertOutcomeVia(
          tx,
          { room_id: roomId, stream_pos: streamPos, event_id: eventId, sender: n.sender, base: n.base, actions: n.actions, ts: this.ctx.now(), thread_id: n.threadId },
          n.exceptions.map((x) => ({ room_id: roomId, stream_pos: streamPos, user_id: x.userId, level: x.level, actions: x.actions, invitee: x.invitee ? 1 : 0 })),
        );
      }
    }
  }
}
