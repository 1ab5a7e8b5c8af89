import { authEventIds, authEventSelection, authStateFromEvents, checkAuth, checkAuthAgainstAuthEvents, prevEventIds } from '../../core/auth-rules.js';
import { stateKey, type StateMap } from '../../core/types.js';
import type { Db } from '../../db/schema.js';
import type { EventStore } from '../events/event-store.js';
import type { StoredEvent } from '../events/stored-event.js';
import type { CheckedPdu } from '../inbound/check-received.js';
import type { ChainOverlay } from '../state/auth-chain-index.js';
import type { GroupRef, MemberInfo, RoomHead } from '../state/room-head.js';
import type { StateGroups } from '../state/state-groups.js';
import { selectIdsWithChildren } from '../store/edges-table.js';
import { memberInfoOf, planGroup, type AppliedEvent } from './apply-event.js';
import { BatchStates } from './batch-states.js';
import type { ReceivedBatch, ReceivedPlan, ReceivedResult } from './received-batch.js';
import { conflictsTouchAuth, MissingEventsError } from './resolve-states.js';
import { policyRecommends } from './policy-check.js';

const CREATE_KEY = stateKey('m.room.create', '');

/**
 * The graph step for events made elsewhere, run in the room's queue like
 * local sends: checks 4-6 on receipt of a PDU (auth against the event's own
 * auth events, against the state before it, against the current state), the
 * state before and after each event (resolved when its prev events' states
 * differ), its place in the stream, and the room's new forward extremities
 * and current state (resolved when more than one extremity remains).
 */
export class ReceivedEventPlanner {
  private readonly states: BatchStates;
  private readonly results: ReceivedResult[] = [];
  private readonly applied: AppliedEvent[] = [];
  private readonly backwardAdded = new Set<string>();
  private readonly upgraded: string[] = [];
  private touched: Set<string> | null = new Set();
  /** The head's state is right only on the keys auth reads: a resolution is owed before the batch is written. */
  private resolutionOwed = false;
  private head: RoomHead;

  constructor(
    private readonly db: Db,
    private readonly events: EventStore,
    private readonly groups: StateGroups,
    base: RoomHead,
    chains: ChainOverlay,
  ) {
    this.head = base;
    this.states = new BatchStates(db, events, groups, base.version, chains);
  }

  async plan(batch: ReceivedBatch): Promise<ReceivedPlan> {
    const ids = [...batch.outliers, ...batch.events].map((e) => e.eventId);
    const known = await this.events.getMany(ids);
    for (const ev of batch.outliers) await this.addOutlier(ev, known.get(ev.eventId));
    const wasPartial = this.head.partial;
    if (batch.partialState) this.head = { ...this.head, partial: batch.partialState };
    const older = await this.olderHistory(batch.events);
    for (const ev of batch.events) {
      if (batch.outOfBand) await this.addOutOfBand(ev, known.get(ev.eventId));
      else await this.addEvent(ev, known.get(ev.eventId), older.has(ev.eventId), batch.stateBefore?.get(ev.eventId));
    }
    // A join that was not accepted leaves nothing to fill in.
    const joinId = batch.partialState?.joinEventId;
    if (joinId !== undefined && !this.results.some((r) => r.eventId === joinId && r.status === 'accepted')) this.head = { ...this.head, partial: wasPartial };
    if (this.resolutionOwed) await this.resolveCurrentState();
    const removed = this.applied.filter((a) => !a.stored.outlier).map((a) => a.stored.eventId);
    return {
      head: this.head,
      applied: this.applied,
      results: this.results,
      backward: { added: [...this.backwardAdded].filter((id) => !this.states.pending.has(id)), removed },
      upgradedOutliers: this.upgraded,
      touched: this.touched,
      chains: this.states.chains,
    };
  }

  /**
   * Events of the batch that are older than history already stored (backfill):
   * those with a stored child, and those with a child in the batch that is.
   */
  private async olderHistory(events: CheckedPdu[]): Promise<Set<string>> {
    const withChildren = await selectIdsWithChildren(this.db, events.map((e) => e.eventId));
    const childrenInBatch = new Map<string, string[]>();
    for (const e of events) {
      for (const p of prevEventIds(e.pdu)) {
        let l = childrenInBatch.get(p);
        if (!l) childrenInBatch.set(p, (l = []));
        l.push(e.eventId);
      }
    }
    const older = new Set<string>();
    for (const e of [...events].reverse()) {
      if (withChildren.has(e.eventId) || (childrenInBatch.get(e.eventId) ?? []).some((c) => older.has(c))) older.add(e.eventId);
    }
    return older;
  }

  // -------------------------------------------------------------------------

  private async createEvent(): Promise<StoredEvent | undefined> {
    const id = this.head.state.get(CREATE_KEY) ?? (this.head.version.roomIdIsCreateEventHash ? `$${this.head.roomId.slice(1)}` : undefined);
    return id === undefined ? undefined : (await this.states.load([id])).get(id);
  }

  private stored(ev: CheckedPdu, opts: { outlier: boolean; rejectedReason: string | null; softFailed: boolean; replaces: string | null }): StoredEvent {
    return {
      eventId: ev.eventId,
      roomId: this.head.roomId,
      pdu: ev.pdu,
      streamPos: null,
      stateGroup: null,
      stateGroupBefore: null,
      replacesState: opts.replaces,
      redactedBy: null,
      rejectedReason: opts.rejectedReason,
      outlier: opts.outlier,
      softFailed: opts.softFailed,
      senderDevice: null,
      txnId: null,
    };
  }

  /** Check 4, shared by outliers and timeline events: the event's own auth events, none of them rejected. */
  private async checkAuthEvents(ev: CheckedPdu): Promise<{ missing: string[] } | { rejected: string } | { ok: true }> {
    const ids = authEventIds(ev.pdu);
    const loaded = await this.states.load(ids);
    const missing = ids.filter((id) => !loaded.has(id));
    if (missing.length > 0) return { missing };
    const list = ids.map((id) => loaded.get(id)!);
    const bad = list.find((a) => a.rejectedReason !== null);
    if (bad) return { rejected: `auth event ${bad.eventId} was rejected` };
    const create = this.head.version.roomIdIsCreateEventHash ? await this.createEvent() : undefined;
    const res = checkAuthAgainstAuthEvents({ eventId: ev.eventId, pdu: ev.pdu }, list, this.head.version, create);
    return res.allowed ? { ok: true } : { rejected: res.reason };
  }

  private async addOutlier(ev: CheckedPdu, known: StoredEvent | undefined): Promise<void> {
    if (known || this.states.pending.has(ev.eventId)) {
      this.results.push({ eventId: ev.eventId, status: 'duplicate' });
      return;
    }
    const auth = await this.checkAuthEvents(ev);
    if ('missing' in auth) {
      this.results.push({ eventId: ev.eventId, status: 'missing', missing: auth.missing });
      return;
    }
    const rejectedReason = 'rejected' in auth ? auth.rejected : null;
    const stored = this.stored(ev, { outlier: true, rejectedReason, softFailed: false, replaces: null });
    this.push(stored, ev, { groupBefore: null, group: null, newGroups: [], prevIds: [], placement: 'none' }, null, null, 0);
    this.results.push(rejectedReason === null ? { eventId: ev.eventId, status: 'outlier' } : { eventId: ev.eventId, status: 'rejected', reason: rejectedReason });
  }

  private async addEvent(ev: CheckedPdu, known: StoredEvent | undefined, hasChildren: boolean, suppliedState: StateMap | undefined): Promise<void> {
    if ((known && !known.outlier) || this.states.pending.has(ev.eventId)) {
      this.results.push({ eventId: ev.eventId, status: 'duplicate' });
      return;
    }
    const pdu = ev.pdu;

    const auth = await this.checkAuthEvents(ev);
    if ('missing' in auth) {
      this.results.push({ eventId: ev.eventId, status: 'missing', missing: auth.missing });
      return;
    }

    // The state before the event: the resolution of the states after its prev events.
    const prevIds = [...new Set(prevEventIds(pdu))];
    const prevs = await this.states.load(prevIds);
    const foreign = prevIds.find((id) => prevs.get(id) !== undefined && prevs.get(id)!.roomId !== this.head.roomId);
    if (foreign !== undefined) {
      // Never stored: a history that reaches into another room is not a history of this one.
      this.results.push({ eventId: ev.eventId, status: 'dropped', reason: `prev event ${foreign} is in another room` });
      return;
    }
    const withState = prevIds.filter((id) => {
      const p = prevs.get(id);
      return p !== undefined && !p.outlier && (this.states.pending.has(id) || p.stateGroup !== null);
    });
    const missingPrevs = prevIds.filter((id) => !withState.includes(id));
    let before: { state: StateMap; ref: GroupRef | null; depth: number };
    const newGroups: AppliedEvent['newGroups'] = [];
    if (missingPrevs.length > 0 && !suppliedState) {
      this.results.push({ eventId: ev.eventId, status: 'missing', missing: missingPrevs });
      return;
    }
    if (suppliedState) {
      // The state a sender reports must be made of events stored here (as outliers at least).
      const ids = [...suppliedState.values()];
      const have = await this.states.load(ids);
      const absent = ids.filter((id) => !have.has(id));
      if (absent.length > 0) {
        this.results.push({ eventId: ev.eventId, status: 'missing', missing: absent });
        return;
      }
    }
    try {
      before = suppliedState ? { state: suppliedState, ref: null, depth: 0 } : await this.states.stateAfterAll(withState);
    } catch (e) {
      if (e instanceof MissingEventsError) {
        this.results.push({ eventId: ev.eventId, status: 'missing', missing: e.ids });
        return;
      }
      throw e;
    }
    if (before.ref === null) {
      const parent = await this.states.parentFor(withState);
      const plan = planGroup(before.state, parent);
      newGroups.push(plan);
      before = { state: before.state, ref: { plan }, depth: plan.deltaDepth };
    }

    let rejectedReason = 'rejected' in auth ? auth.rejected : null;
    let softFailed = false;
    try {
      // Check 5: the state before the event.
      if (rejectedReason === null) {
        const res = await this.authAgainst(ev, before.state);
        if (!res.allowed) rejectedReason = res.reason;
      }
      // Check 6: the current state, for events that extend the room now (backfilled history is not
      // checked against today's state). A room with no current state yet (being joined) takes its
      // state from this event. With partial state the current state lacks members, so the check
      // would soft-fail events it cannot judge: it waits for the full state (as Synapse does).
      if (rejectedReason === null && !hasChildren && this.head.extremities.length > 0 && !this.head.partial) {
        const res = await this.authAgainst(ev, this.head.state);
        softFailed = !res.allowed;
        // A room's Policy Server must have signed what extends it (spec: "Validating Policy Server signatures").
        if (!softFailed) softFailed = !(await policyRecommends(this.head, ev.pdu, (ids) => this.states.load(ids)));
      }
    } catch (e) {
      if (!(e instanceof MissingEventsError)) throw e;
      this.results.push({ eventId: ev.eventId, status: 'missing', missing: e.ids });
      return;
    }

    const isState = typeof pdu.state_key === 'string';
    const key = isState ? stateKey(pdu.type, pdu.state_key!) : undefined;
    let after = before;
    if (key !== undefined && rejectedReason === null) {
      const state = new Map(before.state);
      state.set(key, ev.eventId);
      const plan = planGroup(state, { ref: before.ref!, depth: before.depth, state: before.state }, key);
      newGroups.push(plan);
      after = { state, ref: { plan }, depth: plan.deltaDepth };
    }

    for (const id of missingPrevs) this.backwardAdded.add(id);
    if (known?.outlier) this.upgraded.push(ev.eventId);
    const placement = rejectedReason !== null || softFailed ? 'none' : hasChildren ? 'backfill' : 'new';
    const stored = this.stored(ev, {
      outlier: false,
      rejectedReason,
      softFailed,
      replaces: key !== undefined ? (before.state.get(key) ?? null) : null,
    });
    this.push(stored, ev, { groupBefore: before.ref, group: after.ref, newGroups, prevIds, placement }, after.state, after.ref, after.depth);

    if (placement === 'new') {
      await this.extend(ev, prevIds, after);
      // With one extremity left, the state after this event is the room's: its key took its value.
      if (key !== undefined && this.head.extremities.length === 1) this.applied[this.applied.length - 1]!.becameCurrent = true;
    }
    const status = rejectedReason !== null ? 'rejected' : softFailed ? 'soft_failed' : 'accepted';
    this.results.push(rejectedReason !== null ? { eventId: ev.eventId, status, reason: rejectedReason } : { eventId: ev.eventId, status });
  }

  /**
   * An out-of-band membership: this server holds none of the room's history it would need to check
   * the event (its auth events, the state before it), so the resident server's word stands, as it
   * does for any membership handshake. It joins the state held here (so its target sees it in
   * /sync and can answer it) but never the forward extremities: nothing is built on it here, and a
   * later join starts the room's graph from the state the resident server sends.
   */
  private async addOutOfBand(ev: CheckedPdu, known: StoredEvent | undefined): Promise<void> {
    if ((known && !known.outlier) || this.states.pending.has(ev.eventId)) {
      this.results.push({ eventId: ev.eventId, status: 'duplicate' });
      return;
    }
    const pdu = ev.pdu;
    if (pdu.type !== 'm.room.member' || typeof pdu.state_key !== 'string') {
      this.results.push({ eventId: ev.eventId, status: 'dropped', reason: 'only membership events are stored out of band' });
      return;
    }
    const key = stateKey(pdu.type, pdu.state_key);
    const base = this.head;
    const state = new Map(base.state);
    state.set(key, ev.eventId);
    const parent = base.group !== null ? { ref: base.group, depth: base.groupDepth, state: base.state } : null;
    const plan = planGroup(state, parent, parent ? key : undefined);
    if (known?.outlier) this.upgraded.push(ev.eventId);
    const stored = this.stored(ev, { outlier: false, rejectedReason: null, softFailed: false, replaces: base.state.get(key) ?? null });
    this.push(stored, ev, { groupBefore: base.group, group: { plan }, newGroups: [plan], prevIds: [], placement: 'new' }, state, { plan }, plan.deltaDepth);
    this.touched?.add(key);
    const members = await this.membersFor(state, [key]);
    this.head = { ...base, state, group: { plan }, groupDepth: plan.deltaDepth, members };
    this.results.push({ eventId: ev.eventId, status: 'accepted' });
  }

  private push(
    stored: StoredEvent,
    ev: CheckedPdu,
    g: Pick<AppliedEvent, 'groupBefore' | 'group' | 'newGroups' | 'prevIds' | 'placement'>,
    stateAfter: StateMap | null,
    groupAfter: GroupRef | null,
    depthAfter: number,
  ): void {
    this.applied.push({ index: this.applied.length, stored, ...g, depth: ev.pdu.depth, json: JSON.stringify(ev.pdu) });
    this.states.pending.set(stored.eventId, { stored, stateAfter, groupAfter, depthAfter });
  }

  /**
   * Auth rules against a room state: the event's auth selection drawn from it. With partial
   * state a key the state lacks may be a member the resident server left out: the event's own
   * auth event for that key (checked by check 4) stands in for it (MSC3902), and the full state
   * later replaces the partial one (pipeline/fill-partial-state.ts).
   */
  private async authAgainst(ev: CheckedPdu, state: StateMap) {
    const version = this.head.version;
    const ids = new Set<string>();
    const selection = authEventSelection(ev.pdu, version);
    const absent: string[] = [];
    for (const [t, k] of selection) {
      const id = state.get(stateKey(t, k));
      if (id !== undefined) ids.add(id);
      else absent.push(stateKey(t, k));
    }
    if (this.head.partial && absent.length > 0) {
      const own = await this.states.load(authEventIds(ev.pdu));
      for (const a of own.values()) {
        if (typeof a.pdu.state_key === 'string' && a.pdu.type === 'm.room.member' && absent.includes(stateKey(a.pdu.type, a.pdu.state_key))) ids.add(a.eventId);
      }
    }
    const createId = state.get(CREATE_KEY);
    if (createId !== undefined) ids.add(createId);
    const loaded = await this.states.load(ids);
    const missing = [...ids].filter((id) => !loaded.has(id));
    if (missing.length > 0) throw new MissingEventsError(missing);
    const create = createId !== undefined ? loaded.get(createId) : await this.createEvent();
    return checkAuth({ eventId: ev.eventId, pdu: ev.pdu }, authStateFromEvents(loaded.values()), version, create);
  }

  /**
   * A new event at the end of the room: it replaces its prev events among the
   * forward extremities, and the current state becomes the state after it,
   * or the resolution of the states after every extremity when the room has
   * forked.
   */
  private async extend(ev: CheckedPdu, prevIds: string[], after: { state: StateMap; ref: GroupRef | null; depth: number }): Promise<void> {
    const extremities = this.head.extremities.filter((e) => !prevIds.includes(e.eventId));
    extremities.push({ eventId: ev.eventId, depth: ev.pdu.depth });
    let state: StateMap;
    let group: GroupRef | null;
    let groupDepth: number;
    const linear = this.head.extremities.length === 1 && prevIds.length === 1 && prevIds[0] === this.head.extremities[0]!.eventId;
    if (linear && typeof ev.pdu.state_key === 'string') this.touched?.add(stateKey(ev.pdu.type, ev.pdu.state_key));
    else if (!linear) this.touched = null;
    if (extremities.length === 1) {
      state = after.state;
      group = after.ref;
      groupDepth = after.depth;
      this.resolutionOwed = false;
    } else {
      const sets = (await Promise.all(extremities.map((e) => this.states.stateAfter(e.eventId)))).map((s) => s.state);
      // While the branches differ only in keys the auth rules never read, those keys cannot change
      // how any auth key resolves: checks can go on with this event's state (equal on every auth
      // key) and one resolution at the end of the batch, instead of one per event of a forked room.
      if (conflictsTouchAuth(sets)) {
        state = await this.states.resolve(sets);
        this.resolutionOwed = false;
      } else {
        state = after.state;
        this.resolutionOwed = true;
      }
      group = null;
      groupDepth = 0;
    }
    const members = await this.membersFor(state, linear ? [stateKey(ev.pdu.type, ev.pdu.state_key ?? '')] : undefined);
    this.head = { ...this.head, state, group, groupDepth, extremities, members };
  }

  /** The owed resolution: the current state from the states after every forward extremity. */
  private async resolveCurrentState(): Promise<void> {
    const sets = await Promise.all(this.head.extremities.map((e) => this.states.stateAfter(e.eventId)));
    const state = await this.states.resolve(sets.map((s) => s.state));
    const members = await this.membersFor(state);
    this.head = { ...this.head, state, group: null, groupDepth: 0, members };
    this.touched = null;
    this.resolutionOwed = false;
  }

  /**
   * The head's members after the current state changed: entries whose member
   * event changed are reread. `keys`: the only state keys that may have
   * changed, when known (a linear append); else every key is compared.
   */
  private async membersFor(state: StateMap, keys?: string[]): Promise<ReadonlyMap<string, MemberInfo>> {
    const old = this.head.state;
    const changed: string[] = [];
    const removed: string[] = [];
    for (const k of keys ?? new Set([...state.keys(), ...old.keys()])) {
      if (!k.startsWith('m.room.member\u0000')) continue;
      const id = state.get(k);
      if (id === old.get(k)) continue;
      if (id === undefined) removed.push(k.slice('m.room.member\u0000'.length));
      else changed.push(id);
    }
    if (changed.length === 0 && removed.length === 0) return this.head.members;
    const members = new Map(this.head.members);
    for (const u of removed) members.delete(u);
    const loaded = await this.states.load(changed);
    for (const id of changed) {
      const ev = loaded.get(id);
      const info = ev ? memberInfoOf(id, ev.pdu) : undefined;
      if (ev && info) members.set(ev.pdu.state_key!, info);
    }
    return members;
  }
}
