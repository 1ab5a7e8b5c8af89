import type { LRUCache } from 'lru-cache';
import { boundedCache } from '../../bounded-cache.js';
import type { Context } from '../../context.js';
import { selectEventsByIds } from '../store/events-table.js';
import { storedEventFromRow, type EventColumnsRow, type StoredEvent } from './stored-event.js';

/**
 * Parsed events, read through a bounded LRU. Event JSON never changes once
 * stored; the mutable bits (`redacted_by`) are updated here by the pipeline
 * on write.
 */
export class EventStore {
  private readonly cache: LRUCache<string, StoredEvent>;
  /** Bumped by every change to a mutable column, so a read that raced it is not cached. */
  private epoch = 0;

  constructor(private readonly ctx: Context) {
    this.cache = boundedCache(Math.max(100, ctx.config.caches.events), {}, { owner: ctx, name: 'events' });
  }

  /** Drops an entry whose mutable columns another writer changed (the bus's invalidation message). */
  onInvalidated(eventId: string): void {
    const hit = this.cache.peek(eventId);
    // Our own redactions were applied before they were announced.
    if (hit && hit.redactedBy === null) this.invalidate(eventId);
  }

  async get(eventId: string): Promise<StoredEvent | undefined> {
    return (await this.getMany([eventId])).get(eventId);
  }

  /** One query for whatever the cache lacks. */
  async getMany(eventIds: Iterable<string>): Promise<Map<string, StoredEvent>> {
    const out = new Map<string, StoredEvent>();
    const missing: string[] = [];
    for (const id of eventIds) {
      if (out.has(id)) continue;
      const hit = this.cache.get(id);
      if (hit) out.set(id, hit);
      else missing.push(id);
    }
    if (missing.length > 0) {
      const epoch = this.epoch;
      const rows = await selectEventsByIds(this.ctx.db, [...new Set(missing)]);
      for (const row of rows) out.set(row.event_id, epoch === this.epoch ? this.fromRow(row) : storedEventFromRow(row));
    }
    return out;
  }

  /**
   * Events for rows another query read with only the id and the mutable
   * column: cached events are reused (the row's `redacted_by` applied, as
   * fromRow does), the others are read in one query.
   */
  async getManyForRows(rows: readonly { event_id: string; redacted_by: string | null }[]): Promise<Map<string, StoredEvent>> {
    const out = await this.getMany(rows.map((r) => r.event_id));
    for (const r of rows) {
      const ev = out.get(r.event_id);
      if (ev && r.redacted_by !== null && ev.redactedBy !== r.redacted_by) ev.redactedBy = r.redacted_by;
    }
    return out;
  }

  /** A row read by some other query: reuse the parsed event when cached. */
  fromRow(row: EventColumnsRow): StoredEvent {
    const hit = this.cache.get(row.event_id);
    if (hit) {
      // Rows are authoritative for the mutable columns.
      if (hit.redactedBy !== row.redacted_by && row.redacted_by !== null) hit.redactedBy = row.redacted_by;
      return hit;
    }
    const ev = storedEventFromRow(row);
    this.cache.set(ev.eventId, ev);
    return ev;
  }

  peek(eventId: string): StoredEvent | undefined {
    return this.cache.get(eventId);
  }

  put(ev: StoredEvent): void {
    this.cache.set(ev.eventId, ev);
  }

  markRedacted(eventId: string, redactionId: string): void {
    this.epoch++;
    const hit = this.cache.peek(eventId);
    if (hit && hit.redactedBy === null) hit.redactedBy = redactionId;
  }

  invalidate(eventId: string): void {
    this.epoch++;
    this.cache.delete(eventId);
  }
}
