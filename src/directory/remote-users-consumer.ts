import type { Context } from '../context.js';
import { readStreamPositions } from '../db/stream-positions.js';
import { directoryChanges, eventsToRead, redactedProfiles, redactionTarget } from './remote-users-changes.js';
import { applyDirectoryChanges, selectDirectoryPosition, selectRowsOfEvents } from './user-directory-store.js';

/** The lease that makes one node of a cluster keep the directory. */
const LEASE = 'user_directory';
/** Current-state changes read per round. */
const BATCH = 500;
/** How long after an advance a catch-up starts: a burst of joins is applied in one round. */
const DELAY_MS = 200;
/** A node that is not the holder asks again this often, so the work moves when the holder dies. */
const POLL_MS = 5000;
/** How long a stretch that changes nothing may go unrecorded (a restart reads it again, to no effect). */
const PERSIST_MS = 5000;

/**
 * Keeps the user directory's tables (remote users by room, local users by room, the rooms' join
 * rule and history visibility) up with the rooms' current-state stream: a consumer that reads
 * the changes after its stored position and writes what they change with the new position in
 * one transaction, so a restart resumes where it stopped, and a leave, a kick or a state reset
 * removes a user as surely as a join adds one. Redactions on the events stream are read over the
 * same stretch: a redacted member event's row loses its name and avatar. The send path does not
 * wait for it: a search sees the rooms as of the last round, a fraction of a second behind.
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
  /**
   * Where rounds that found nothing to write have read up to, past the stored position: most
   * stretches of a busy server hold only messages, and a write each round would be a commit for
   * nothing. Good while the stored position is still `stored` (no other node has moved it).
   */
  private clean: { stored: number; upTo: number; since: number } | undefined;

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

  /** One round of up to about BATCH state changes and BATCH redactions. Whether more may remain. */
  private async round(): Promise<boolean> {
    if (this.stopped) return false;
    const lease = await this.ctx.leases.acquire(LEASE);
    if (!lease) return false;
    const stored = await selectDirectoryPosition(this.ctx.db);
    const from = this.clean?.stored === stored ? this.clean.upTo : stored;
    // Commit order is position order: everything at or below the head read now is committed, so
    // the two reads below see the same stretch of the stream.
    const head = (await readStreamPositions(this.ctx.db)).events;
    if (head <= from) return false;
    const rooms = this.ctx.services.rooms;
    const [deltas, redactions] = await Promise.all([
      rooms.stateDeltasAfter(from, head, BATCH),
      rooms.streamEventsOfTypes({ types: ['m.room.redaction'], after: from, limit: BATCH }),
    ]);
    // Each read is complete up to its last row when it was cut short, up to the head otherwise.
    const to = Math.min(
      deltas.length >= BATCH ? deltas[deltas.length - 1]!.stream_pos : head,
      redactions.length >= BATCH ? redactions[redactions.length - 1]!.streamPos! : head,
    );
    const stretch = deltas.filter((d) => d.stream_pos <= to);
    const targets = redactions.filter((r) => r.streamPos! <= to).flatMap((r) => redactionTarget(r.pdu) ?? []);

    const serverName = this.ctx.serverName;
    // Rows written before this stretch whose member event it redacts. A member event this
    // stretch writes is read after its redactions up to the head committed, so comes pruned.
    const holders = await selectRowsOfEvents(this.ctx.db, targets);
    // A redaction another node applied must be in this node's event cache before it is read.
    if (holders.size > 0) await this.ctx.bus.settle();
    const events = await rooms.getCurrentStateEvents([...new Set([...eventsToRead(stretch, serverName), ...holders.keys()])]);
    const contentOf = (id: string) => events.get(id)?.content;
    const changes = { ...directoryChanges(stretch, serverName, contentOf), redacted: redactedProfiles(holders, contentOf) };
    const now = Date.now();
    const since = this.clean?.stored === stored ? this.clean.since : now;
    if (Object.values(changes).every((list) => list.length === 0) && now - since < PERSIST_MS) {
      this.clean = { stored, upTo: to, since };
      return to < head;
    }
    this.clean = undefined;
    const moved = await this.ctx.db.transaction().execute(async (trx) => {
      await this.ctx.leases.fence(trx, lease);
      return applyDirectoryChanges(trx, stored, to, changes);
    });
    // Another consumer moved the position first: read again from where it left it.
    if (!moved) return true;
    return to < head;
  }
}
