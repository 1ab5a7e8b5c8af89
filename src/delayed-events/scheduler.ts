import type { Context } from '../context.js';
import { deleteFinalisedBefore, selectDue, selectNextDue } from './store.js';
import type { DelayedEventRow } from './tables.js';

/**
 * Sends delayed events when their time comes. One node at a time does it
 * (the `delayed_events` lease); each node wakes at the earliest time it
 * knows of, and at least every CHECK_EVERY_MS to see events other nodes
 * scheduled (MSC4140 lets a server add up to 30 s). On start it sends what
 * came due while it was down.
 */

const CHECK_EVERY_MS = 15_000;
const BATCH = 50;
/** Finalised events are kept this long for GET /delayed_events (MSC4140 "Retention"). */
const KEEP_FINALISED_MS = 7 * 24 * 60 * 60 * 1000;

export class DelayedScheduler {
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;

  constructor(
    private readonly ctx: Context,
    private readonly deliver: (row: DelayedEventRow) => Promise<void>,
  ) {}

  start(): void {
    this.stopped = false;
    this.arm(this.ctx.now());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** An event is due at `at`: wake then if that is earlier than planned. */
  poke(at: number): void {
    if (!this.stopped && at < this.timerAt) this.arm(at);
  }

  private arm(at: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const when = Math.min(at, this.ctx.now() + CHECK_EVERY_MS);
    this.timerAt = when;
    this.timer = setTimeout(() => this.fire(), Math.max(0, when - this.ctx.now()));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((err) => this.ctx.logger.warn({ err }, 'delayed events pass failed'))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.fire();
        }
      });
  }

  private async pass(): Promise<void> {
    const { db, leases } = this.ctx;
    const lease = await leases.acquire('delayed_events');
    if (!lease) {
      this.arm(this.ctx.now() + CHECK_EVERY_MS);
      return;
    }
    // Bounded: an event another node is sending right now would come back in every batch.
    for (let batches = 0; batches < 20; batches++) {
      const due = await selectDue(db, this.ctx.now(), BATCH);
      for (const row of due) {
        if (this.stopped || !leases.stillHeld(lease)) return;
        await this.deliver(row);
      }
      if (due.length < BATCH) break;
    }
    await deleteFinalisedBefore(db, this.ctx.now() - KEEP_FINALISED_MS);
    const next = await selectNextDue(db);
    this.arm(next ?? this.ctx.now() + CHECK_EVERY_MS);
  }
}
