import { ALL_KEYS } from '../cluster/bus.js';
import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';
import { getRoomVersion, type RoomVersion } from '../core/room-versions.js';
import type { ClientEvent, JsonObject } from '../core/types.js';
import { notFound } from '../http/errors.js';
import { toClientEvent, type Viewer } from './events/client-format.js';
import { EventStore } from './events/event-store.js';
import type { EventView } from './events/stored-event.js';
import { HistoryVisibilityFilter } from './events/visibility.js';
import { InboundEvents } from './inbound/receive.js';
import { StaticKeyRing, type KeyRing } from './inbound/key-ring.js';
import type { RemoteRooms } from './remote-rooms.js';
import { EVENT_CACHE, EVENT_ROW_CACHE, EventPipeline } from './pipeline/pipeline.js';
import { selectPartialStateRoomIds } from './store/partial-state-table.js';
import { selectRoom, selectRooms } from './store/rooms-table.js';
import { RoomHeads, type RoomHead } from './state/room-head.js';
import { StateGroups } from './state/state-groups.js';

/**
 * Bundled aggregations (spec: client-server "Aggregations of child events"):
 * for each event it is asked about, the `m.relations` object of those that
 * have aggregated children. `depth` is how deep in a bundle the events are
 * (0 for the events a client asked for), so nested bundles stay bounded.
 */
export interface Bundler {
  bundle(events: EventView[], viewer: Viewer, depth: number): Promise<Map<string, JsonObject>>;
}

/** A check on a client's new event beyond the auth rules; throws a MatrixError to refuse it. */
export type SendRule = (roomId: string, sender: string, type: string, content: JsonObject) => Promise<void>;

export interface FormatOptions {
  /** Which events get bundled aggregations (default: every non-state event, when there is a viewer). */
  bundle?: boolean | ((ev: EventView) => boolean);
  /** Set by a bundler formatting events inside a bundle. */
  bundleDepth?: number;
  /** Events without `room_id`, as /sync serves them. */
  withoutRoomId?: boolean;
}

/** How often a request waiting for a room's full state looks again (a cached head: no query). */
const FULL_STATE_POLL_MS = 100;

/** The rooms domain's shared machinery: caches, the pipeline and event formatting. */
export class RoomsCore {
  readonly heads: RoomHeads;
  readonly events: EventStore;
  readonly groups: StateGroups;
  readonly visibility: HistoryVisibilityFilter;
  readonly pipeline: EventPipeline;
  /** Servers' public keys for checking received events; federation adds remote servers' keys. */
  readonly keyRing: StaticKeyRing;
  /** The one path for events made elsewhere. */
  inbound: InboundEvents;
  /** Membership in rooms and of users on other servers: set by federation when it is on. */
  remote: RemoteRooms | null = null;
  private readonly versions = boundedCache<string, RoomVersion>(10_000);
  private bundler: Bundler | undefined;
  /** Checks a client's message event before it is built (the relations domain's rules). */
  sendRule: SendRule | undefined;

  constructor(readonly ctx: Context) {
    this.heads = new RoomHeads(ctx);
    this.events = new EventStore(ctx);
    this.groups = new StateGroups(ctx);
    this.visibility = new HistoryVisibilityFilter(ctx, this.heads, this.events, this.groups);
    this.pipeline = new EventPipeline(ctx, this.heads, this.events, this.groups, this.visibility);
    this.keyRing = new StaticKeyRing(ctx.serverName, ctx.signingKey);
    this.inbound = new InboundEvents(this.heads, this.pipeline, this.keyRing, ctx.logger);
    ctx.bus.onInvalidate((msg) => {
      if (msg.key === ALL_KEYS && (msg.cache === ALL_KEYS || msg.cache === EVENT_CACHE || msg.cache === EVENT_ROW_CACHE)) this.events.invalidateAll();
      else if (msg.cache === EVENT_CACHE) this.events.onInvalidated(msg.key);
      else if (msg.cache === EVENT_ROW_CACHE) this.events.invalidate(msg.key);
    });
  }

  /**
   * Checks received events' signatures with `ring` from now on: federation's ring, which asks
   * `keyRing` first and fetches remote servers' keys it lacks.
   */
  useKeyRing(ring: KeyRing): void {
    this.inbound = new InboundEvents(this.heads, this.pipeline, ring, this.ctx.logger);
  }

  /** Adds bundled aggregations to the events `format` serves from now on (the relations domain). */
  useBundler(bundler: Bundler): void {
    this.bundler = bundler;
  }

  useSendRule(rule: SendRule): void {
    this.sendRule = rule;
  }

  /** The room's head; 404 M_NOT_FOUND when this server does not know the room. */
  async requireHead(roomId: string): Promise<RoomHead> {
    const head = await this.heads.get(roomId);
    if (!head) throw notFound(`Room ${roomId} is not known to this server`);
    return head;
  }

  /** The rooms joined with partial state whose full state is not filled in yet. */
  partialStateRoomIds(): Promise<string[]> {
    return selectPartialStateRoomIds(this.ctx.db);
  }

  /**
   * Resolves once the room's state is full: at once for most rooms; for a room joined with
   * partial state, when its full state is filled in (on any node: the head is dropped from every
   * node's cache then), or after `maxWaitMs`, when what is known is all there is to answer from.
   * Requests that list the room's members (/members, /joined_members) wait, as Synapse's do; the
   * others (sync, lazy-loaded members, key queries, device-list tracking) answer from the members
   * known so far. The members filled in later are no state change at any stream position, so
   * incremental syncs do not replay them: clients see them in /members and in an initial sync.
   */
  async awaitFullState(roomId: string, maxWaitMs = 300_000): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    while (Date.now() < deadline) {
      const head = await this.heads.get(roomId);
      if (!head?.partial) return;
      await new Promise((r) => setTimeout(r, FULL_STATE_POLL_MS));
    }
  }

  async versionOf(roomId: string): Promise<RoomVersion | null> {
    const head = this.heads.peek(roomId);
    if (head) return head.version;
    const hit = this.versions.get(roomId);
    if (hit) return hit;
    const row = await selectRoom(this.ctx.db, roomId);
    const v = row ? getRoomVersion(row.room_version) : undefined;
    if (!v) return null;
    this.versions.set(roomId, v);
    return v;
  }

  /** versionOf for many rooms: one query for those neither a head nor the cache knows. */
  async versionsOf(roomIds: Iterable<string>): Promise<Map<string, RoomVersion>> {
    const out = new Map<string, RoomVersion>();
    const missing: string[] = [];
    for (const roomId of roomIds) {
      const v = this.heads.peek(roomId)?.version ?? this.versions.get(roomId);
      if (v) out.set(roomId, v);
      else missing.push(roomId);
    }
    // Chunks keep the statement within both drivers' parameter limits.
    for (let i = 0; i < missing.length; i += 500) {
      for (const row of await selectRooms(this.ctx.db, missing.slice(i, i + 500))) {
        const v = getRoomVersion(row.room_version);
        if (!v) continue;
        this.versions.set(row.room_id, v);
        out.set(row.room_id, v);
      }
    }
    return out;
  }

  /**
   * Client forms of stored events, with the replaced state events (for
   * `prev_content`) and redactions (for `redacted_because`) fetched in one
   * batch, and bundled aggregations for the viewer. State events get none
   * (spec: "State events do not currently receive bundled aggregations").
   */
  async format(events: EventView[], viewer?: Viewer, membershipAt?: Map<string, string>, opts: FormatOptions = {}): Promise<ClientEvent[]> {
    if (events.length === 0) return [];
    const wanted = opts.bundle ?? true;
    const bundled = this.bundler && viewer && wanted !== false ? events.filter((ev) => typeof ev.pdu.state_key !== 'string' && (wanted === true || wanted(ev))) : [];
    const relations = bundled.length > 0 ? await this.bundler!.bundle(bundled, viewer!, opts.bundleDepth ?? 0) : undefined;
    const extra = relatedIds(events);
    const related = extra.size > 0 ? await this.events.getViews(extra) : new Map<string, EventView>();
    const versions = await this.versionsOf(new Set(events.map((ev) => ev.roomId)));
    return formatAll(events, { versions, related, relations, now: this.ctx.now(), viewer, membershipAt, withoutRoomId: opts.withoutRoomId });
  }
}

/** The replaced state events (for `prev_content`) and redactions (for `redacted_because`) the events name. */
function relatedIds(events: readonly EventView[]): Set<string> {
  const ids = new Set<string>();
  for (const ev of events) {
    if (ev.replacesState !== null) ids.add(ev.replacesState);
    if (ev.redactedBy !== null) ids.add(ev.redactedBy);
  }
  return ids;
}

/** What RoomsCore.format read for its events. */
interface FormatReads {
  versions: ReadonlyMap<string, RoomVersion>;
  related: ReadonlyMap<string, EventView>;
  relations: Map<string, JsonObject> | undefined;
  now: number;
  viewer: Viewer | undefined;
  membershipAt: Map<string, string> | undefined;
  withoutRoomId: boolean | undefined;
}

/** The client forms of the events, from what format read; events of rooms with no known version are left out. */
function formatAll(events: readonly EventView[], r: FormatReads): ClientEvent[] {
  const out: ClientEvent[] = [];
  for (const ev of events) {
    const version = r.versions.get(ev.roomId);
    if (!version) continue;
    out.push(
      toClientEvent(ev, {
        version,
        now: r.now,
        viewer: r.viewer,
        replaced: ev.replacesState !== null ? r.related.get(ev.replacesState) : undefined,
        redaction: ev.redactedBy !== null ? r.related.get(ev.redactedBy) : undefined,
        membership: r.membershipAt?.get(ev.eventId),
        relations: r.relations?.get(ev.eventId),
        withoutRoomId: r.withoutRoomId,
      }),
    );
  }
  return out;
}
