import type { Context } from '../../context.js';
import { needsPolicySignature } from '../../core/policy-server.js';
import { stateKey, type StateMap } from '../../core/types.js';
import type { Tx } from '../../db/schema.js';
import { pgPipeline, type PgPipeline } from '../../db/pg-pipeline.js';
import { sqliteSync, type SqliteSync, type SyncTx } from '../../db/sqlite-sync.js';
import { forbidden } from '../../http/errors.js';
import type { PushActionRow } from '../../push/service.js';
import { bareClientEvent } from '../events/client-format.js';
import type { EventStore } from '../events/event-store.js';
import type { StoredEvent } from '../events/stored-event.js';
import type { HistoryVisibilityFilter } from '../events/visibility.js';
import { isTxnConflict, selectByTxnIds, selectOneTxnSync, type TxnEndpoint, type TxnKey } from '../store/events-table.js';
import { emptyHead, groupId, type RoomHead, type RoomHeads } from '../state/room-head.js';
import type { StateGroups } from '../state/state-groups.js';
import { applyToHead, type AppliedEvent } from './apply-event.js';
import { ReceivedEventPlanner } from './apply-received.js';
import type { ReceivedBatch, ReceivedResult } from './received-batch.js';
import { buildLocalEvent, type BuiltEvent } from './build-event.js';
import { roomPolicyServer, type PolicySigner } from './policy-check.js';
import { AuthChainIndex } from '../state/auth-chain-index.js';
import { isPlainAppend, persistBatch, persistPlainAppendPipelined, persistPlainAppendSync, positionsFrom, StaleHeadError, type BatchWrite, type Positions } from './persist-batch.js';
import { afterStateFill, persistStateFill, planStateFill } from './fill-partial-state.js';
import { computePushActions, PushRooms } from './push-actions.js';
import { redactionToApply } from './redaction-target.js';
import type { AcceptedJob, FillJob, Job, PersistedEvent, ReceiveJob, SubmitOptions } from './jobs.js';
import { RoomQueue } from './room-queue.js';

const PL_KEY = stateKey('m.room.power_levels', '');
const MAX_STALE_RETRIES = 3;
/** Appends into different rooms this close together (ms) are taken as concurrent: they group their commits (see write). */
const GROUP_WINDOW_MS = 5;
/** Bus cache name for parsed events whose mutable columns changed. */
export const EVENT_CACHE = 'rooms.event';
/**
 * Bus cache name for parsed events whose row changed in a way an EVENT_CACHE message does not
 * cover (a redaction withdrawn, a state group or status replaced): every cached copy goes.
 */
export const EVENT_ROW_CACHE = 'rooms.event-row';

export type { PersistedEvent, PlanResult, SubmitOptions } from './jobs.js';

/**
 * The one write path for room events. Per room, jobs are planned and built
 * one after another on a working copy of the room head (auth-checked against
 * the state they extend), their push actions computed, and the whole batch
 * written in one transaction; caches and the bus are updated only after it
 * commits, and only then are the callers answered.
 */
export class EventPipeline {
  private readonly queue: RoomQueue<Job | ReceiveJob | FillJob>;
  /** SQLite's synchronous transactions, for batches that only append (most sends). */
  private readonly sqlite: SqliteSync | undefined;
  /** PostgreSQL's pipelined transactions, for the same batches. */
  private readonly pg: PgPipeline | undefined;
  /** The room and time (performance.now()) of the last plain append written on SQLite (see write). */
  private lastAppend = { roomId: '', at: -Infinity };
  /** The auth chain cover index: state resolution reads it, every batch with state events adds to it. */
  private readonly chains = new AuthChainIndex();
  private readonly pushRooms = new PushRooms();
  private readonly committedListeners: ((events: readonly StoredEvent[]) => void)[] = [];
  /** Asks a room's Policy Server to sign a local event: set by federation when it is on. */
  policySigner: PolicySigner | null = null;

  constructor(
    private readonly ctx: Context,
    private readonly heads: RoomHeads,
    private readonly events: EventStore,
    private readonly groups: StateGroups,
    private readonly visibility: HistoryVisibilityFilter,
  ) {
    this.queue = new RoomQueue((roomId, jobs) => this.runJobs(roomId, jobs));
    this.sqlite = sqliteSync(ctx.db);
    this.pg = pgPipeline(ctx.db);
  }

  /**
   * A local event of a room that uses a Policy Server, signed by it (spec: "Asking for a Policy
   * Server signature on an event"); a refusal fails the send with the Policy Server's error.
   */
  private async withPolicySignature(head: RoomHead, built: BuiltEvent, load: (ids: string[]) => Promise<Map<string, StoredEvent>>): Promise<BuiltEvent> {
    if (!needsPolicySignature(built.pdu)) return built;
    const policy = await roomPolicyServer(head, load);
    if (policy === null) return built;
    if (!this.policySigner) throw forbidden('This room uses a policy server, which this server cannot ask without federation');
    const pdu = await this.policySigner(policy, built.pdu, head.version);
    return { ...built, pdu, json: JSON.stringify(pdu) };
  }

  /** Calls `listener` with the events of every batch this node commits (for the metrics). */
  onCommitted(listener: (events: readonly StoredEvent[]) => void): void {
    this.committedListeners.push(listener);
  }

  /** Queues a write to an existing room; resolves after commit. */
  submit<T = PersistedEvent[]>(roomId: string, opts: SubmitOptions<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push(roomId, { opts: opts as SubmitOptions<unknown>, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  /**
   * Writes the first events of a new room (starting with m.room.create) in
   * one transaction. Nobody can address the room before this returns, so it
   * needs no queue.
   */
  createRoom<T = PersistedEvent[]>(head: RoomHead, opts: SubmitOptions<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const job: Job = { opts: opts as SubmitOptions<unknown>, resolve: resolve as (v: unknown) => void, reject };
      void this.runBatch(head.roomId, [job], head, 0);
    });
  }

  /**
   * Queues events made elsewhere (checks 1-3 on receipt done by the inbound
   * path) behind the room's other writes; resolves after commit with what
   * became of each.
   */
  receive(roomId: string, received: ReceivedBatch): Promise<ReceivedResult[]> {
    return new Promise<ReceivedResult[]>((resolve, reject) => this.queue.push(roomId, { received, resolve, reject }));
  }

  /**
   * Queues the filling in of a room's partial state with `full`, the state before its join
   * (every event of it stored); resolves after commit with whether the room had partial state.
   * `fence` runs in the transaction: it throws when the caller no longer owns the work.
   */
  completePartialState(roomId: string, full: StateMap, fence?: (trx: Tx) => Promise<void>): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => this.queue.push(roomId, { fill: { full, fence }, resolve, reject }));
  }

  async drained(): Promise<void> {
    await this.queue.drained();
  }

  /** Local sends are batched together; a received batch or a fill runs on its own, in queue order. */
  private async runJobs(roomId: string, jobs: (Job | ReceiveJob | FillJob)[]): Promise<void> {
    let local: Job[] = [];
    for (const j of jobs) {
      if ('received' in j || 'fill' in j) {
        if (local.length > 0) await this.runBatch(roomId, local, null, 0);
        local = [];
        if ('received' in j) await this.runReceived(roomId, j, 0);
        else await this.runFill(roomId, j, 0);
      } else {
        local.push(j);
      }
    }
    if (local.length > 0) await this.runBatch(roomId, local, null, 0);
  }

  private async runReceived(roomId: string, job: ReceiveJob, attempt: number): Promise<void> {
    try {
      const known = await this.heads.get(roomId);
      const newRoom = job.received.newRoom;
      if (!known && !newRoom) throw new Error(`room ${roomId} is unknown`);
      const base = known ?? emptyHead(roomId, newRoom!.version, newRoom!.creator);
      const plan = await new ReceivedEventPlanner(this.ctx.db, this.events, this.groups, base, this.chains.overlay()).plan(job.received);
      if (plan.applied.length === 0) {
        job.resolve(plan.results);
        return;
      }
      const plEvent = await this.stateEvent(plan.head, PL_KEY);
      const authEvents = new Map<string, StoredEvent>(plEvent ? [[PL_KEY, plEvent]] : []);
      const load = (ids: string[]) => this.events.getMany(ids);
      const pushRoom = this.pushRooms.of(plan.head, plEvent?.pdu.content);
      const push = await Promise.all(
        plan.applied.map(async (a) => {
          if (a.placement !== 'new') return [];
          if (a.stored.pdu.type === 'm.room.redaction') {
            a.redactionTarget = await redactionToApply(plan.head, a.stored.pdu, a.stored.eventId, authEvents, load);
          }
          return computePushActions(this.ctx, bareClientEvent(a.stored), pushRoom);
        }),
      );
      const write: BatchWrite = {
        base,
        head: plan.head,
        events: plan.applied,
        push,
        newRoom: !known,
        clearedProfiles: [],
        backward: plan.backward,
        upgradedOutliers: plan.upgradedOutliers,
        touched: plan.touched ?? undefined,
        chains: plan.chains,
      };
      let positions: Positions;
      try {
        positions = await this.ctx.db.transaction().execute((trx) => persistBatch(this.ctx, trx, write));
      } catch (e) {
        this.heads.invalidate(roomId);
        if (e instanceof StaleHeadError && attempt < MAX_STALE_RETRIES) return await this.runReceived(roomId, job, attempt + 1);
        throw e;
      }
      plan.chains.committed();
      this.afterCommit(plan.head, plan.applied, positions);
      job.resolve(plan.results);
    } catch (e) {
      this.ctx.logger.error({ err: e, roomId }, 'persisting received events failed');
      job.reject(e);
    }
  }

  private async runFill(roomId: string, job: FillJob, attempt: number): Promise<void> {
    try {
      const base = await this.heads.get(roomId);
      if (!base?.partial) {
        job.resolve(false);
        return;
      }
      const fill = await planStateFill({ ctx: this.ctx, events: this.events, groups: this.groups }, base, job.fill.full);
      let pos: number;
      try {
        pos = await this.ctx.db.transaction().execute((trx) => persistStateFill(this.ctx, trx, fill, job.fill.fence));
      } catch (e) {
        this.heads.invalidate(roomId);
        if (e instanceof StaleHeadError && attempt < MAX_STALE_RETRIES) return await this.runFill(roomId, job, attempt + 1);
        throw e;
      }
      this.heads.set(afterStateFill(this.ctx, { events: this.events, groups: this.groups }, fill, pos));
      for (const f of fill.failing) {
        this.ctx.logger.info({ roomId, eventId: f.eventId, reason: f.reason, outcome: f.outcome }, 'an event accepted with partial state is not allowed by the full state');
      }
      job.resolve(true);
    } catch (e) {
      this.ctx.logger.error({ err: e, roomId }, 'filling in a partial state failed');
      job.reject(e);
    }
  }

  private async stateEvent(head: RoomHead, key: string): Promise<StoredEvent | undefined> {
    const id = head.state.get(key);
    return id === undefined ? undefined : this.events.get(id);
  }

  /**
   * Plans, builds and writes a batch of local jobs. `lookupTxns`: look up the jobs' transaction ids
   * before building. Without it the unique index on transaction ids is the check: the write of a
   * send whose transaction is already stored fails (isTxnConflict), and the batch is planned again
   * with the lookup. Repeated transactions are rare (a client retrying after a lost answer), so
   * sends skip a read that nearly always finds nothing.
   */
  private async runBatch(roomId: string, jobs: Job[], freshHead: RoomHead | null, attempt: number, lookupTxns = false): Promise<void> {
    const refused = await this.planAndWrite(roomId, jobs, freshHead, attempt, lookupTxns);
    // A refused send may repeat a transaction whose event is stored (sent before its sender left the
    // room, say): it is answered with that event, as the lookup would have before planning.
    if (refused.length > 0) await this.runBatch(roomId, refused, null, attempt, true);
  }

  /** runBatch's one pass; returns the jobs with a transaction refused without a lookup. */
  private async planAndWrite(roomId: string, jobs: Job[], freshHead: RoomHead | null, attempt: number, lookupTxns: boolean): Promise<Job[]> {
    const refused: Job[] = [];
    let base: RoomHead | null;
    try {
      base = freshHead ?? (await this.heads.get(roomId));
    } catch (e) {
      for (const j of jobs) j.reject(e);
      return refused;
    }
    if (!base) {
      for (const j of jobs) j.reject(new Error(`room ${roomId} is unknown`));
      return refused;
    }

    // Send idempotency, checked under the room's serialisation.
    const txnJobs = lookupTxns ? jobs.filter((j) => j.opts.txn) : [];
    const existingTxn = new Map<string, PersistedEvent>();
    if (txnJobs.length > 0 && !freshHead) {
      try {
        const only = txnJobs.length === 1 ? txnJobs[0]!.opts.txn! : undefined;
        const rows =
          this.sqlite && only
            ? await this.sqlite.read((tx) => selectOneTxnSync(tx, roomId, only))
            : await selectByTxnIds(this.ctx.db, roomId, txnJobs.map((j) => j.opts.txn!));
        for (const r of rows) {
          if (r.sender_device === null || r.txn_id === null || r.txn_endpoint === null || r.stream_pos === null) continue;
          const key = txnKey({ sender: r.sender, deviceId: r.sender_device, txnId: r.txn_id, endpoint: r.txn_endpoint as TxnEndpoint });
          existingTxn.set(key, { eventId: r.event_id, roomId, streamPos: Number(r.stream_pos) });
        }
      } catch (e) {
        for (const j of jobs) j.reject(e);
        return refused;
      }
    }

    let working = base;
    const accepted: AcceptedJob[] = [];
    const applied: AppliedEvent[] = [];
    // Push evaluation of the whole batch runs concurrently and is awaited once, before the transaction.
    const pushJobs: Promise<PushActionRow[]>[] = [];
    const pending = new Map<string, StoredEvent>();
    const batchTxn = new Map<string, AcceptedJob>();
    const clearedProfiles: { userId: string; eventId: string }[] = [];

    for (const job of jobs) {
      const txn = job.opts.txn;
      if (txn) {
        const key = txnKey(txn);
        const existing = existingTxn.get(key);
        if (existing) {
          job.resolve([existing]);
          continue;
        }
        const twin = batchTxn.get(key);
        if (twin) {
          accepted.push({ job, events: [], sameAs: twin });
          continue;
        }
      }
      const jobPending = new Map<string, StoredEvent>();
      const load = async (ids: string[]): Promise<Map<string, StoredEvent>> => {
        const out = new Map<string, StoredEvent>();
        const rest: string[] = [];
        for (const id of ids) {
          const p = jobPending.get(id) ?? pending.get(id);
          if (p) out.set(id, p);
          else rest.push(id);
        }
        if (rest.length > 0) for (const [id, ev] of await this.events.getMany(rest)) out.set(id, ev);
        return out;
      };
      try {
        const plan = await job.opts.plan(working);
        if ('done' in plan) {
          // The answer may rest on events of this batch: it waits for the commit like theirs.
          accepted.push({ job, events: [], done: { value: plan.done } });
          continue;
        }
        let h = working;
        const mine: AppliedEvent[] = [];
        const minePush: Promise<PushActionRow[]>[] = [];
        const cleared: { userId: string; eventId: string }[] = [];
        for (const spec of plan.events) {
          const unsigned = await buildLocalEvent(this.ctx, h, spec, load);
          if (!unsigned.auth.allowed) {
            throw job.opts.authError ? job.opts.authError(unsigned.auth.reason) : forbidden(unsigned.auth.reason);
          }
          const built = await this.withPolicySignature(h, unsigned, load);
          let redactionTarget: string | undefined;
          if (built.pdu.type === 'm.room.redaction') {
            redactionTarget = await redactionToApply(h, built.pdu, built.eventId, built.authEvents, load);
          }
          const pushRoom = this.pushRooms.of(h, built.authEvents.get(PL_KEY)?.pdu.content);
          const res = applyToHead(h, built, applied.length + mine.length, redactionTarget);
          h = res.head;
          if (redactionTarget !== undefined) {
            const target = (await load([redactionTarget])).get(redactionTarget);
            const sk = target?.pdu.state_key;
            if (target && target.pdu.type === 'm.room.member' && typeof sk === 'string' && h.members.get(sk)?.eventId === target.eventId) {
              const next = new Map(h.members);
              next.set(sk, { ...h.members.get(sk)!, displayName: null, avatarUrl: null });
              h = { ...h, members: next };
              cleared.push({ userId: sk, eventId: target.eventId });
            }
          }
          mine.push(res.applied);
          jobPending.set(built.eventId, res.applied.stored);
          minePush.push(computePushActions(this.ctx, bareClientEvent(res.applied.stored), pushRoom));
        }
        working = h;
        for (const a of mine) {
          applied.push(a);
          pending.set(a.stored.eventId, a.stored);
        }
        pushJobs.push(...minePush);
        clearedProfiles.push(...cleared);
        const acc: AcceptedJob = { job, events: mine, finish: plan.finish };
        accepted.push(acc);
        if (txn) batchTxn.set(txnKey(txn), acc);
      } catch (e) {
        if (job.opts.txn && !lookupTxns && !freshHead) refused.push(job);
        else job.reject(e);
      }
    }

    if (applied.length === 0) {
      for (const acc of accepted) {
        if (acc.done) acc.job.resolve(acc.done.value);
        else if (acc.sameAs) acc.job.reject(new Error('duplicate of a failed send'));
      }
      return refused;
    }

    const push = await Promise.all(pushJobs);
    const touched = new Set<string>();
    for (const a of applied) {
      const pdu = a.stored.pdu;
      if (typeof pdu.state_key === 'string') touched.add(stateKey(pdu.type, pdu.state_key));
    }
    const write: BatchWrite = { base, head: working, events: applied, push, newRoom: freshHead !== null, clearedProfiles, touched, chains: this.chains.overlay() };
    let positions: Positions;
    try {
      positions = await this.write(write);
    } catch (e) {
      this.heads.invalidate(roomId);
      const txnConflict = isTxnConflict(e);
      if ((e instanceof StaleHeadError || txnConflict) && attempt < MAX_STALE_RETRIES) {
        // Re-plan every accepted job against the fresh head; a job whose transaction is stored gets its event.
        await this.runBatch(roomId, accepted.map((a) => a.job), null, attempt + 1, lookupTxns || txnConflict);
        return refused;
      }
      this.ctx.logger.error({ err: e, roomId }, 'persisting events failed');
      for (const acc of accepted) acc.job.reject(e);
      return refused;
    }

    write.chains.committed();
    this.afterCommit(working, applied, positions);
    for (const acc of accepted) {
      if (acc.done) {
        acc.job.resolve(acc.done.value);
        continue;
      }
      const events = (acc.sameAs ?? acc).events;
      const persisted = events.map((a) => ({ eventId: a.stored.eventId, roomId: a.stored.roomId, streamPos: positions[a.index]! }));
      const finish = (acc.sameAs ?? acc).finish;
      try {
        acc.job.resolve(acc.sameAs || !finish ? persisted : finish(persisted));
      } catch (e) {
        acc.job.reject(e);
      }
    }
    return refused;
  }

  /**
   * One transaction for the batch: the fast path for a plain append, else the general one.
   *
   * On SQLite, plain appends into several rooms at once share a transaction and its commit
   * (SqliteSync.grouped, each under its own savepoint): a group forms while the event loop reads
   * the other requests that arrived with this one, so each waits for the loop's next turn. That
   * wait is only taken when appends into different rooms follow each other closely (the last one
   * into another room, less than GROUP_WINDOW_MS ago): one client sending into one room, or a
   * quiet server, commits at once.
   */
  private async write(w: BatchWrite): Promise<Positions> {
    if (isPlainAppend(w)) {
      if (this.sqlite) {
        const roomId = w.head.roomId;
        const now = performance.now();
        const busy = this.lastAppend.roomId !== roomId && now - this.lastAppend.at < GROUP_WINDOW_MS;
        this.lastAppend = { roomId, at: now };
        const append = (tx: SyncTx) => persistPlainAppendSync(this.ctx, tx, w);
        return positionsFrom(w.events, await (busy ? this.sqlite.grouped(append) : this.sqlite.transaction(append)));
      }
      if (this.pg) return positionsFrom(w.events, await this.pg.transaction((tx) => persistPlainAppendPipelined(this.ctx, tx, w)));
    }
    return this.ctx.db.transaction().execute((trx) => persistBatch(this.ctx, trx, w));
  }

  private afterCommit(head: RoomHead, applied: AppliedEvent[], positions: Positions): void {
    let lastPos = head.lastPos;
    for (const p of positions) if (p !== null && p > lastPos) lastPos = p;
    const final: RoomHead = { ...head, group: head.group === null ? null : { id: groupId(head.group) }, lastPos };
    this.heads.set(final);
    for (const a of applied) {
      const pos = positions[a.index] ?? null;
      a.stored.streamPos = pos;
      a.stored.stateGroup = a.group === null ? null : groupId(a.stored.rejectedReason !== null ? a.groupBefore! : a.group);
      a.stored.stateGroupBefore = a.groupBefore === null ? null : groupId(a.groupBefore);
      this.events.put(a.stored);
      for (const g of a.newGroups) this.groups.put(g.id!, g.state);
      if (a.redactionTarget !== undefined) {
        this.events.markRedacted(a.redactionTarget, a.stored.eventId);
        // Other nodes hold the target without `redacted_by`.
        this.ctx.bus.invalidate({ cache: EVENT_CACHE, key: a.redactionTarget });
      }
      if (pos !== null) this.visibility.onEventWritten(head.roomId, pos, a.stored.pdu);
    }
    if (this.committedListeners.length > 0) {
      const stored = applied.map((a) => a.stored);
      for (const listener of this.committedListeners) listener(stored);
    }
    for (const a of applied) {
      const pdu = a.stored.pdu;
      const pos = positions[a.index];
      // Backfilled history is not news: only events placed at the end of the stream are announced.
      if (pos == null || pos < 0) continue;
      this.ctx.bus.publish({
        stream: 'events',
        pos,
        roomId: head.roomId,
        userIds: pdu.type === 'm.room.member' && typeof pdu.state_key === 'string' ? [pdu.state_key] : undefined,
      });
    }
  }
}

function txnKey(k: TxnKey): string {
  return `${k.sender}\u0000${k.deviceId}\u0000${k.endpoint}\u0000${k.txnId}`;
}
