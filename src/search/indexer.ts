import type { Context } from '../context.js';
import { sqliteSync } from '../db/sqlite-sync.js';
import { SEARCHED_TYPES, searchRows } from './index-rows.js';
import { advanceIndexState, insertSearchDocs, recordRoundSync, selectIndexState } from './search-table.js';

/** Events read per round. */
const BATCH = 500;
/** How long after an advance the background catch-up starts: a burst of sends is indexed in one round. */
const DELAY_MS = 200;
/** The lease under which one node of a cluster indexes in the background. */
const LEASE = 'search.indexer';

/**
 * Keeps the search index up with the events stream: a consumer that reads
 * new events by stream position after each advance (and backfilled history
 * below the lowest position it has read), writes their text, and moves its
 * recorded positions in the same transaction, so it resumes where it stopped
 * after a restart and a database written before search existed is indexed
 * from the start. In the background it runs on one node of a cluster at a
 * time, the lease's holder: on the others it would read every event only to
 * lose the race to record it. A search on any node catches up first
 * (`catchUp`), so it finds what was sent before it was asked; a round whose
 * positions another node moved first is rolled back and read again. The send
 * path does not wait for it.
 */
export class SearchIndexer {
  /** Rounds run one at a time in this process. */
  private chain: Promise<unknown> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** SQLite's synchronous transactions: a round's write without Kysely's transaction and statement building. */
  private readonly sqlite: ReturnType<typeof sqliteSync>;

  constructor(private readonly ctx: Context) {
    this.sqlite = sqliteSync(ctx.db);
  }

  start(): void {
    this.unsubscribe = this.ctx.bus.onAdvance((msg) => {
      if (msg.stream === 'events') this.kick();
    });
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
    await this.chain.catch(() => {});
  }

  /** Indexes everything committed before the call. */
  async catchUp(): Promise<void> {
    for (;;) {
      const more = await this.serialised(() => this.round());
      if (!more) return;
    }
  }

  /** A catch-up in the background, shortly after the first of a burst of advances. */
  private kick(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.catchUpAsHolder().catch((err) => this.ctx.logger.error({ err }, 'search indexing failed'));
    }, DELAY_MS);
    this.timer.unref();
  }

  private async catchUpAsHolder(): Promise<void> {
    if (await this.ctx.leases.acquire(LEASE)) await this.catchUp();
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  /** One round: up to BATCH events each way. Whether more may remain. */
  private async round(): Promise<boolean> {
    if (this.stopped) return false;
    const rooms = this.ctx.services.rooms;
    const from = await selectIndexState(this.ctx.db);
    const [fresh, old] = await Promise.all([
      rooms.streamEventsOfTypes({ types: SEARCHED_TYPES, after: from.forward, limit: BATCH }),
      rooms.streamEventsOfTypes({ types: SEARCHED_TYPES, before: Math.min(0, from.backward), limit: BATCH }),
    ]);
    if (fresh.length === 0 && old.length === 0) return false;
    const to = {
      forward: fresh.length > 0 ? fresh[fresh.length - 1]!.streamPos! : from.forward,
      backward: old.length > 0 ? old[old.length - 1]!.streamPos! : from.backward,
    };
    const docs = searchRows([...fresh, ...old]);
    const moved = this.sqlite
      ? await this.sqlite.transaction((tx) => recordRoundSync(tx, from, to, docs))
      : await this.ctx.db.transaction().execute(async (trx) => {
          if (!(await advanceIndexState(trx, from, to))) return false;
          await insertSearchDocs(trx, this.ctx.dialect, docs);
          return true;
        });
    // Another indexer took this round: read again from where it left the positions.
    if (!moved) return true;
    return fresh.length === BATCH || old.length === BATCH;
  }
}
