import type { LRUCache } from 'lru-cache';
import { boundedCache } from '../../bounded-cache.js';
import type { Context } from '../../context.js';
import { selectEventsByIds, selectEventViewsByIds, type EventViewRow } from '../store/events-table.js';
import { fromRow, storedEventFromRow, viewOf, type ClientPdu, type EventColumnsRow, type EventView, type StoredEvent } from './stored-event.js';

/**
 * Parsed events, read through a bounded LRU, and their client-facing parts
 * (EventView) through a second, larger one: /sync and the other client reads
 * format many more events than the pipeline needs whole. Event JSON never
 * changes once stored; the mutable bits (`redacted_by`) are updated here by
 * the pipeline on write, and by the bus's invalidations for other writers.
 */
export class EventStore {
  private readonly cache: LRUCache<string, StoredEvent>;
  private readonly views: LRUCache<string, EventView>;
  /** Bumped by every change to a mutable column, so a read that raced it is not cached. */
  private epoch = 0;

  constructor(private readonly ctx: Context) {
    this.cache = boundedCache(Math.max(100, ctx.config.caches.events), {}, { owner: ctx, name: 'events' });
    this.views = boundedCache(Math.max(100, ctx.config.caches.client_events), {}, { owner: ctx, name: 'client_events' });
  }

  /** Drops an entry whose mutable columns another writer changed (the bus's invalidation message). */
  onInvalidated(eventId: string): void {
    // Our own redactions were applied before they were announced; an event cached in neither
    // form still bumps the epoch, so that a read under way does not cache what it read.
    if (this.cache.peek(eventId)?.redactedBy == null || this.views.peek(eventId)?.redactedBy == null) this.invalidate(eventId);
  }

  async get(eventId: string): Promise<StoredEvent | undefined> {
    return (await this.getMany([eventId])).get(eventId);
  }

  /**
   * One query for whatever the cache lacks. The map lists the events in the order asked for,
   * whichever of them the cache held (a /sync's state section is listed in this order).
   * `cacheReads: false` leaves the events read out of the cache (getManyForRows).
   */
  async getMany(eventIds: Iterable<string>, cacheReads = true): Promise<Map<string, StoredEvent>> {
    const out = new Map<string, StoredEvent | undefined>();
    const missing: string[] = [];
    for (const id of eventIds) {
      if (out.has(id)) continue;
      const hit = this.cache.get(id);
      out.set(id, hit);
      if (!hit) missing.push(id);
    }
    if (missing.length > 0) {
      const epoch = this.epoch;
      const rows = await selectEventsByIds(this.ctx.db, missing);
      for (const row of rows) out.set(row.event_id, cacheReads && epoch === this.epoch ? this.fromRow(row) : storedEventFromRow(row));
    }
    return withoutUnknown(out, missing);
  }

  /**
   * Events for rows another query read with only the id and the mutable
   * column: cached events are reused (the row's `redacted_by` applied, as
   * fromRow does), the others are read in one query and not cached: the rows come from consumers
   * walking the stream (streamEventsOfTypes), whose reads of old history would push out the
   * events clients are reading.
   */
  async getManyForRows(rows: readonly { event_id: string; redacted_by: string | null }[]): Promise<Map<string, StoredEvent>> {
    const out = await this.getMany(rows.map((r) => r.event_id), false);
    applyRedactedBy(rows, out);
    return out;
  }

  /**
   * The client-facing parts of events (for formatting them): from either
   * cache, or one query for the rest that reads only the PDUs' content. In
   * the order asked for, as getMany.
   */
  async getViews(eventIds: Iterable<string>): Promise<Map<string, EventView>> {
    const out = new Map<string, EventView | undefined>();
    const missing = this.cachedViews(eventIds, out);
    if (missing.length > 0) {
      const epoch = this.epoch;
      const rows = await selectEventViewsByIds(this.ctx.db, this.ctx.dialect, missing);
      addViewRows(rows, out, epoch === this.epoch ? this.views : null);
    }
    return withoutUnknown(out, missing);
  }

  /**
   * getViews' lookups: each id's view from either cache into `out`, in the
   * order asked for, an undefined placeholder for the others, which it
   * returns (so that the read's rows do not go to the end).
   */
  private cachedViews(eventIds: Iterable<string>, out: Map<string, EventView | undefined>): string[] {
    const missing: string[] = [];
    for (const id of eventIds) {
      if (out.has(id)) continue;
      const hit = this.views.get(id);
      if (hit) {
        out.set(id, hit);
        continue;
      }
      const whole = this.cache.peek(id);
      if (whole) {
        const view = viewOf(whole);
        this.views.set(id, view);
        out.set(id, view);
      } else {
        out.set(id, undefined);
        missing.push(id);
      }
    }
    return missing;
  }

  /** getViews for rows another query read with the id and the mutable column (as getManyForRows). */
  async getViewsForRows(rows: readonly { event_id: string; redacted_by: string | null }[]): Promise<Map<string, EventView>> {
    const out = await this.getViews(rows.map((r) => r.event_id));
    applyRedactedBy(rows, out);
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
    for (const hit of [this.cache.peek(eventId), this.views.peek(eventId)]) if (hit && hit.redactedBy === null) hit.redactedBy = redactionId;
  }

  invalidate(eventId: string): void {
    this.epoch++;
    this.cache.delete(eventId);
    this.views.delete(eventId);
  }

  /** Drops every entry: which events other nodes changed is unknown (the bus lost track of them). */
  invalidateAll(): void {
    this.epoch++;
    this.cache.clear();
    this.views.clear();
  }
}

/** The rows' `redacted_by`, authoritative for that mutable column, on the events read for them. */
function applyRedactedBy(rows: readonly { event_id: string; redacted_by: string | null }[], out: ReadonlyMap<string, EventView>): void {
  for (const r of rows) {
    const ev = out.get(r.event_id);
    if (ev && r.redacted_by !== null && ev.redactedBy !== r.redacted_by) ev.redactedBy = r.redacted_by;
  }
}

/** `out` without the ids the read did not find (events this server does not have). */
function withoutUnknown<V>(out: Map<string, V | undefined>, missing: readonly string[]): Map<string, V> {
  for (const id of missing) if (out.get(id) === undefined) out.delete(id);
  return out as Map<string, V>;
}

/** The views of rows read by id into `out`, and into `cache` unless a write raced the read (null). */
function addViewRows(rows: readonly EventViewRow[], out: Map<string, EventView | undefined>, cache: LRUCache<string, EventView> | null): void {
  // Rows of one read share their rooms and senders: one string each, not one per row.
  const shared = new Map<string, string>();
  const intern = (s: string): string => {
    const hit = shared.get(s);
    if (hit !== undefined) return hit;
    shared.set(s, s);
    return s;
  };
  for (const row of rows) {
    const view = viewFromRow(row, intern);
    cache?.set(view.eventId, view);
    out.set(view.eventId, view);
  }
}

function viewFromRow(row: EventViewRow, intern: (s: string) => string): EventView {
  const pdu: ClientPdu = { sender: intern(row.sender), type: intern(row.type), content: (row.content ?? {}) as ClientPdu['content'], origin_server_ts: Number(row.origin_server_ts) };
  if (row.state_key !== null) pdu.state_key = row.state_key;
  if (row.redacts !== null) pdu.redacts = row.redacts;
  return fromRow(row, intern(row.room_id), pdu);
}
