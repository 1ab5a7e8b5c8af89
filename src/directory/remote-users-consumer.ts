import type { Context } from '../context.js';
import { directoryChanges, eventsToRead } from './remote-users-changes.js';
import { applyDirectoryChanges, selectDirectoryPosition } from './user-directory-store.js';

/** The lease that makes one node of a cluster keep the directory. */
const LEASE = 'user_directory';
/** Current-state changes read per round. */
const BATCH = 500;
/** How long after an advance a catch-up starts: a burst of joins is applied in one round. */
const DELAY_MS = 200;
/** A node that is not the holder asks again this often, so the work moves when the holder dies. */
const POLL_MS = 5000;

/**
 * Keeps the user directory's tables (remote users by room, local users by room, the rooms' join
 * rule and history visibility) up with the rooms' current-state stream: a consumer that reads
 * the changes after its stored position and writes what they change with the new position in
 * one transaction, so a restart resumes where it stopped, and a leave, a kick or a state reset
 * removes a user as surely as a join adds one. The send path does not wait for it: a search
 * sees the rooms as of the last round, a fraction of a second behind.
 *
 * One node runs it, under a lease; every round's write is fenced by the lease's epoch and made
 * only if the position is still the one the round read, so a paused ex-holder writes nothing.
 */
export class RemoteUsersConsumer {
  /** Rounds run one at a time in this process. */
  private chain: Promise<unknown> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly ctx: Context) {}

  start(): void {
    this.unsubscribe = this.ctx.bus.onAdvance((msg) => {
      if (msg.stream === 'events') this.kick();
    });
    this.poll = setInterval(() => this.kick(), POLL_MS);
    this.poll.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
    clearInterval(this.poll);
    await this.chain.catch(() => {});
  }

  /** Applies every change committed before the call, if this node holds the lease. */
  async catchUp(): Promise<void> {
    for (;;) {
      const more = await this.serialised(() => this.round());
      if (!more) return;
    }
  }

  private kick(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.catchUp().catch((err) => this.ctx.logger.warn({ err }, 'user directory update failed; retrying later'));
    }, DELAY_MS);
    this.timer.unref();
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  /** One round of up to about BATCH changes. Whether more may remain. */
  private async round(): Promise<boolean> {
    if (this.stopped) return false;
    const lease = await this.ctx.leases.acquire(LEASE);
    if (!lease) return false;
    const from = await selectDirectoryPosition(this.ctx.db);
    const rooms = this.ctx.services.rooms;
    const deltas = await rooms.stateDeltasAfter(from, BATCH);
    if (deltas.length === 0) return false;
    const events = await rooms.getCurrentStateEvents(eventsToRead(deltas, this.ctx.serverName));
    const changes = directoryChanges(deltas, this.ctx.serverName, (id) => events.get(id)?.content);
    const to = deltas[deltas.length - 1]!.stream_pos;
    const moved = await this.ctx.db.transaction().execute(async (trx) => {
      await this.ctx.leases.fence(trx, lease);
      return applyDirectoryChanges(trx, from, to, changes);
    });
    // Another consumer moved the position first: read again from where it left it.
    if (!moved) return true;
    return deltas.length >= BATCH;
  }
}
