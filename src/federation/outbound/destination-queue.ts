/**
 * One remote server's outbound queue. Events meant for it are known by their stream positions:
 * the queue holds at most `maxHints` of them in memory and otherwise (after an overflow, after a
 * restart, while the server is failing) reads them again from the events stream, starting after
 * `delivered`, the stored position up to which everything meant for it was delivered. So memory
 * stays bounded however long the server is away, and nothing is lost when this one restarts.
 *
 * Transactions carry up to 50 PDUs and 100 EDUs. EDUs that must not be lost (to-device messages,
 * device-list and signing-key updates, receipts) are stored in `federation_outbound_edus` and read
 * from there after `eduPos`, the stored position up to which the server took them; the others
 * (typing, presence) are ephemeral, held in memory only while the server answers. A failure
 * backs the server off exponentially (BackoffPolicy) up to a cap; a request from the server
 * itself (`wake(true)`) ends the wait at once. Progress is written only while
 * the queue's lease is held, so a second sender for the same server cannot move it.
 */
import type { Logger } from 'pino';
import { LeaseLostError, type Lease, type Leases } from '../../cluster/leases.js';
import type { Db } from '../../db/schema.js';
import type { JsonObject, Pdu } from '../../core/types.js';
import { selectDestination, updateDestination } from './destinations-table.js';
import { deleteOutboundEdus, selectOutboundEdus } from './outbound-edus-table.js';

export const MAX_PDUS_PER_TXN = 50;
export const MAX_EDUS_PER_TXN = 100;
/** EDUs held per destination; the oldest give way. They are not kept while the server is failing. */
export const MAX_EDUS_QUEUED = 500;

export interface Edu {
  edu_type: string;
  content: JsonObject;
}
/** Event positions held in memory per destination by default; beyond it, the queue reads the stream instead. */
export const MAX_HINTS = 1000;

export interface QueueLimits {
  maxHints: number;
}

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export interface DestinationStatus {
  destination: string;
  state: 'up' | 'backing_off';
  /** When the current run of failures started (ms), null while up. */
  failingSince: number | null;
  /** When the next attempt is due while backing off. */
  retryAt: number | null;
  /** Events known to wait for this server (a lower bound while it reads from the stream). */
  queueDepth: number;
  /** Whether the queue is reading the events stream rather than its in-memory list. */
  catchingUp: boolean;
  lastError: string | null;
  deliveredPos: number;
}

/** What the queue needs from the sender: the stream and how to send. */
export interface QueueSource {
  /** Position up to which the sender has sorted events into queues. */
  scannedPos(): number;
  /** Events for `destination` with positions in (after, upTo], at most `limit` looked at: the PDUs and the last position looked at. */
  readFor(destination: string, after: number, upTo: number, limit: number): Promise<{ events: { pos: number; eventId: string }[]; lastPos: number; exhausted: boolean }>;
  pdusOf(eventIds: string[]): Promise<Pdu[]>;
  sendTransaction(destination: string, txnId: string, pdus: Pdu[], edus: Edu[], signal: AbortSignal): Promise<void>;
}

export class DestinationQueue {
  private hints: { pos: number; eventId: string }[] = [];
  private edus: Edu[] = [];
  private catchingUp: boolean;
  private failingSince: number | null;
  private lastError: string | null;
  private intervalMs = 0;
  private retryAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  /** Set when hints are thrown away: a stream read that started before cannot end the catching up. */
  private hintsDropped = false;
  private stopped = false;
  private txnCounter = 0;
  /** The federation_edus position up to which this server took its stored EDUs. */
  private eduPos: number;
  private lease: Lease | null = null;
  /** Aborts the transaction in flight when the queue stops. */
  private readonly aborter = new AbortController();

  constructor(
    readonly destination: string,
    private delivered: number,
    private readonly deps: {
      db: Db;
      leases: Leases;
      source: QueueSource;
      logger: Logger;
      now: () => number;
      backoff: BackoffPolicy;
      limits: QueueLimits;
    },
    state: { catchingUp: boolean; failingSince: number | null; lastError: string | null; eduPos: number },
  ) {
    this.eduPos = state.eduPos;
    this.catchingUp = state.catchingUp;
    this.failingSince = state.failingSince;
    this.lastError = state.lastError;
  }

  status(): DestinationStatus {
    return {
      destination: this.destination,
      state: this.failingSince === null ? 'up' : 'backing_off',
      failingSince: this.failingSince,
      retryAt: this.retryAt,
      queueDepth: this.hints.length + this.edus.length,
      catchingUp: this.catchingUp,
      lastError: this.lastError,
      deliveredPos: this.delivered,
    };
  }

  /** An event at `pos` is meant for this server. */
  add(pos: number, eventId: string): void {
    if (pos <= this.delivered) return;
    if (this.hints.length >= this.deps.limits.maxHints) {
      // Too many to hold: forget them all and read them from the stream when their turn comes.
      this.hints = [];
      this.catchingUp = true;
      this.hintsDropped = true;
      return;
    }
    this.hints.push({ pos, eventId });
  }

  /**
   * An EDU for this server, sent with the next transaction. These are ephemeral (typing, presence):
   * while the server is failing they are dropped rather than kept for it.
   */
  addEdu(edu: Edu): void {
    if (this.failingSince !== null) return;
    if (this.edus.length >= MAX_EDUS_QUEUED) this.edus.shift();
    this.edus.push(edu);
  }

  /** Starts sending if there is anything to send. `contacted`: the server just reached us, so it is up: retry now. */
  wake(contacted = false): void {
    if (this.stopped) return;
    if (contacted && this.retryAt !== null) {
      this.retryAt = null;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.retryAt !== null) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.run().catch((e: unknown) => this.deps.logger.error({ err: e, destination: this.destination }, 'federation queue failed')).finally(() => {
      this.running = null;
      if (this.again && !this.stopped) {
        this.again = false;
        this.wake();
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.aborter.abort();
    await this.running;
    if (this.lease) await this.deps.leases.release(this.lease);
  }

  /** Resolves once nothing is being sent (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    this.again = false;
    if (!this.lease || !this.deps.leases.stillHeld(this.lease)) {
      this.lease = await this.deps.leases.acquire(`federation.send:${this.destination}`);
      if (!this.lease) return;
      await this.resume();
    }
    while (!this.stopped && this.deps.leases.stillHeld(this.lease)) {
      const batch = await this.nextBatch();
      const stored = await selectOutboundEdus(this.deps.db, this.destination, this.eduPos, MAX_EDUS_PER_TXN);
      const edus = [...stored.map((s) => s.edu), ...this.edus.splice(0, MAX_EDUS_PER_TXN - stored.length)];
      if (batch === null && edus.length === 0) return;
      const sending = (batch !== null && batch.eventIds.length > 0) || edus.length > 0;
      if (sending) {
        const txnId = `${this.deps.now()}.${++this.txnCounter}`;
        try {
          const pdus = batch ? await this.deps.source.pdusOf(batch.eventIds) : [];
          await this.deps.source.sendTransaction(this.destination, txnId, pdus, edus, this.aborter.signal);
        } catch (e) {
          if (this.stopped) return;
          await this.failed(e as Error);
          return;
        }
      }
      await this.advance(batch?.upTo ?? this.delivered, stored.length > 0 ? stored[stored.length - 1]!.pos : this.eduPos, sending);
    }
  }

  /**
   * A lease just taken: another node may have sent to this server since this queue last did, so
   * it goes on from the stored position, reading the stream up to its hints.
   */
  private async resume(): Promise<void> {
    const row = await selectDestination(this.deps.db, this.destination);
    if (row) {
      this.delivered = row.delivered_pos;
      this.eduPos = row.edu_pos;
    }
    this.catchingUp = true;
  }

  /** The next events to send and the position reached once they are sent; null when nothing is left. */
  private async nextBatch(): Promise<{ eventIds: string[]; upTo: number } | null> {
    if (this.catchingUp) {
      this.hintsDropped = false;
      const upTo = this.deps.source.scannedPos();
      const read = await this.deps.source.readFor(this.destination, this.delivered, upTo, 500);
      const events = read.events.slice(0, MAX_PDUS_PER_TXN);
      const reached = events.length < read.events.length ? events[events.length - 1]!.pos : read.lastPos;
      if (read.exhausted && events.length === read.events.length && !this.hintsDropped) {
        // Everything up to `upTo` is in this batch: the events after it are in the hints.
        this.catchingUp = false;
        this.hints = this.hints.filter((h) => h.pos > upTo);
        if (events.length === 0 && upTo <= this.delivered) return this.hints.length > 0 ? this.nextBatch() : null;
        return { eventIds: events.map((e) => e.eventId), upTo: Math.max(upTo, this.delivered) };
      }
      return { eventIds: events.map((e) => e.eventId), upTo: reached };
    }
    if (this.hints.length === 0) return null;
    const taken = this.hints.slice(0, MAX_PDUS_PER_TXN);
    return { eventIds: taken.map((h) => h.eventId), upTo: taken[taken.length - 1]!.pos };
  }

  /**
   * Records progress up to `upTo` on the events stream and `eduUpTo` on the stored EDUs, whose
   * rows the server took are deleted; `answered`: the server took a transaction, so it is up.
   */
  private async advance(upTo: number, eduUpTo: number, answered: boolean): Promise<void> {
    const recovered = answered && this.failingSince !== null;
    const edusTaken = eduUpTo > this.eduPos;
    if (upTo > this.delivered || edusTaken || recovered) {
      // Fenced: once another node has the lease, this one's progress is not written (it resumes from the stored position).
      const lease = this.lease;
      try {
        await this.deps.db.transaction().execute(async (trx) => {
          if (lease) await this.deps.leases.fence(trx, lease);
          const set = { delivered_pos: Math.max(upTo, this.delivered), edu_pos: Math.max(eduUpTo, this.eduPos) };
          await updateDestination(trx, this.destination, recovered ? { ...set, failing_since: null, last_error: null } : set);
          if (edusTaken) await deleteOutboundEdus(trx, this.destination, eduUpTo);
        });
      } catch (e) {
        if (e instanceof LeaseLostError) return;
        throw e;
      }
    }
    this.delivered = Math.max(this.delivered, upTo);
    this.eduPos = Math.max(this.eduPos, eduUpTo);
    this.hints = this.hints.filter((h) => h.pos > this.delivered);
    if (!answered) return;
    if (recovered) this.deps.logger.info({ destination: this.destination }, 'federation destination is reachable again');
    this.failingSince = null;
    this.lastError = null;
    this.intervalMs = 0;
  }

  private async failed(err: Error): Promise<void> {
    const now = this.deps.now();
    const first = this.failingSince === null;
    this.failingSince ??= now;
    this.lastError = err.message;
    const { initialMs, maxMs } = this.deps.backoff;
    this.intervalMs = this.intervalMs === 0 ? initialMs : Math.min(maxMs, this.intervalMs * 2);
    this.retryAt = now + this.intervalMs;
    // While it is away, its events are read from the stream when it is back.
    this.hints = [];
    this.edus = [];
    this.catchingUp = true;
    this.hintsDropped = true;
    if (first) this.deps.logger.warn({ destination: this.destination, err: err.message }, 'federation destination unreachable; backing off');
    if (!this.stopped) {
      await updateDestination(this.deps.db, this.destination, { failing_since: this.failingSince, last_error: this.lastError });
      this.timer = setTimeout(() => {
        this.timer = null;
        this.retryAt = null;
        this.wake();
      }, this.intervalMs);
      this.timer.unref();
    }
  }
}
