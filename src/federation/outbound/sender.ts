/**
 * The outbound federation sender. It reads the events stream by position after each commit (the
 * bus says when the stream advanced), sorts each event made here into the queues of the servers
 * that should receive it, and keeps how far it read in `federation_sender_positions`; a server
 * seen for the first time is registered in `federation_destinations` before that position moves,
 * so after a restart every queue resumes from its own stored position and nothing is lost.
 *
 * Who receives an event: the servers in the room at the event (event-destinations.ts), not those
 * in it when the scan gets there. Events made elsewhere are not relayed, except a join or leave
 * that this server accepted through send_join / send_leave (`forward`). EDUs about a room go to
 * the servers in it now.
 *
 * EDUs that must not be lost (DURABLE_EDU_TYPES) are stored for each server, in the writer's
 * transaction where it has one, and read back by the server's queue; whichever node stored them,
 * the bus wakes the queue on the node that owns the server's shard (an invalidation of
 * OUTBOUND_EDUS_CACHE keyed by the server, poked to the other nodes after commit), and a poll
 * repairs a lost poke. Ephemeral EDUs (typing, presence) stay in memory: every node
 * hears the change behind them on the bus and hands them to its own queue, and only the queue
 * holding the server's lease sends, so the owner sends them.
 */
import type { Logger } from 'pino';
import { ALL_KEYS, type Bus } from '../../cluster/bus.js';
import type { Leases } from '../../cluster/leases.js';
import type { KeyShards } from '../../cluster/shard-owner.js';
import { serverNameOf } from '../../core/ids.js';
import type { Pdu } from '../../core/types.js';
import type { Db, DbOrTx } from '../../db/schema.js';
import { readStreamPositions } from '../../db/stream-positions.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import { HEAD_CACHE } from '../../rooms/state/room-head.js';
import { selectStreamEventsAfter } from '../../rooms/store/stream-reads.js';
import type { FederationClient } from '../client.js';
import type { RoomReads } from '../room-reads.js';
import { insertDestination, selectDestinations, selectSenderPosition, upsertSenderPosition } from './destinations-table.js';
import { insertOutboundEdus, selectEduDestinations } from './outbound-edus-table.js';
import { EventDestinations } from './event-destinations.js';
import { DestinationQueue, MAX_HINTS, type BackoffPolicy, type Edu, type QueueLimits, type DestinationStatus, type QueueSource } from './destination-queue.js';

const STREAM = 'events';
const SCAN_PAGE = 500;
const PERSIST_EVERY_MS = 5_000;
/** Sends come in bursts: one scan a little after the first advance sorts the whole burst. */
const COALESCE_MS = 50;

/** Stored EDUs are looked for this often, in case the poke that announced them was lost. */
const EDU_POLL_MS = 5_000;
/** The "cache" whose invalidation, keyed by a server, says EDUs were stored for it. */
export const OUTBOUND_EDUS_CACHE = 'federation.outbound_edus';
/**
 * EDU types stored until the server takes them: losing a to-device message or a device-list
 * update breaks encryption or device tracking; a lost read receipt stays lost (only a later one
 * in the room replaces it). Every node of a cluster hears the changes behind device-list updates
 * and receipts and stores the EDU; the dedupe key stores it once.
 */
export const DURABLE_EDU_TYPES: ReadonlySet<string> = new Set(['m.direct_to_device', 'm.device_list_update', 'm.signing_key_update', 'm.receipt']);

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 10_000, maxMs: 6 * 3600_000 };

export interface SenderDeps {
  db: Db;
  bus: Bus;
  leases: Leases;
  logger: Logger;
  now: () => number;
  serverName: string;
  core: RoomsCore;
  reads: RoomReads;
  client: FederationClient;
}

export class FederationSender implements QueueSource {
  private readonly queues = new Map<string, DestinationQueue>();
  private readonly destinations: EventDestinations;
  private scanned = 0;
  private persistedAt = 0;
  private scanning: Promise<void> | null = null;
  private pendingScan: NodeJS.Timeout | null = null;
  private rescan = false;
  private unsubscribe: (() => void) | null = null;
  private unsubscribeEdus: (() => void) | null = null;
  private eduPoll: NodeJS.Timeout | null = null;
  private started = false;
  private shards: KeyShards | null = null;
  /** Retry timing for failing servers; tests shorten it (in place: queues share the object). */
  readonly backoff: BackoffPolicy = { ...DEFAULT_BACKOFF };
  /** Memory per destination; tests lower it. */
  readonly limits: QueueLimits = { maxHints: MAX_HINTS };

  constructor(private readonly deps: SenderDeps) {
    this.destinations = new EventDestinations(deps.core, deps.serverName);
  }

  async start(): Promise<void> {
    const stored = await selectSenderPosition(this.deps.db, STREAM);
    // On first start, history already in the rooms is not sent again.
    this.scanned = stored ?? (await readStreamPositions(this.deps.db)).events;
    if (stored === undefined) await this.persistScanned();
    for (const row of await selectDestinations(this.deps.db)) {
      this.queues.set(
        row.destination,
        this.newQueue(row.destination, row.delivered_pos, { catchingUp: true, failingSince: row.failing_since, lastError: row.last_error, eduPos: row.edu_pos }),
      );
    }
    this.started = true;
    this.unsubscribe = this.deps.bus.onAdvance((msg) => {
      if (msg.stream !== 'events' || this.pendingScan) return;
      this.pendingScan = setTimeout(() => {
        this.pendingScan = null;
        this.scan();
      }, COALESCE_MS);
    });
    this.unsubscribeEdus = this.deps.bus.onInvalidate((msg) => {
      if (msg.cache === OUTBOUND_EDUS_CACHE) this.wakeFor(msg.key);
      // A partial state filled in: the groups of the events stored meanwhile may be read anew.
      else if (msg.cache === HEAD_CACHE) this.destinations.forgetGroups();
      else if (msg.cache === ALL_KEYS) {
        this.destinations.forgetGroups();
        this.pollStoredEdus();
      }
    });
    this.eduPoll = setInterval(() => this.pollStoredEdus(), EDU_POLL_MS);
    this.eduPoll.unref();
    for (const q of this.queues.values()) q.wake();
    this.scan();
  }

  async stop(): Promise<void> {
    this.started = false;
    this.unsubscribe?.();
    this.unsubscribeEdus?.();
    if (this.eduPoll) clearInterval(this.eduPoll);
    if (this.pendingScan) clearTimeout(this.pendingScan);
    while (this.scanning) await this.scanning;
    await Promise.all([...this.queues.values()].map((q) => q.stop()));
    await this.persistScanned();
  }

  private async persistScanned(): Promise<void> {
    this.persistedAt = this.deps.now();
    await upsertSenderPosition(this.deps.db, STREAM, this.scanned);
  }

  /**
   * Nodes sharing a database share the destinations out by shard (CLUSTER.md 5): a queue sends
   * only under its shard's lease, is woken when this node gains the shard, and is let finish its
   * transaction in flight before the shard is given back. Set before start.
   */
  useShards(shards: KeyShards): void {
    this.shards = shards;
    shards.onGained((inGained) => {
      for (const q of this.queues.values()) if (inGained(q.destination)) q.wake();
    });
    shards.onLeaving(async (inLeaving) => {
      await Promise.all([...this.queues.values()].filter((q) => inLeaving(q.destination)).map((q) => q.idle()));
    });
  }

  /** The state of every destination queue, for operators. */
  statuses(): DestinationStatus[] {
    return [...this.queues.values()].map((q) => q.status());
  }

  status(destination: string): DestinationStatus | undefined {
    return this.queues.get(destination)?.status();
  }

  /** `origin` just made an authenticated request: if it was backed off, it is up again. */
  contacted(origin: string): void {
    this.queues.get(origin)?.wake(true);
  }

  /** Resolves when the stream is sorted and no queue is sending (tests). */
  async idle(): Promise<void> {
    while (this.scanning) await this.scanning;
    await Promise.all([...this.queues.values()].map((q) => q.idle()));
  }

  /**
   * Sends an event made elsewhere that this server accepted for another (a join through
   * send_join) to the room's other servers, `origin` excepted. Held in memory only: a server
   * that misses it fetches it through the event's descendants.
   */
  async forward(roomId: string, eventId: string, pos: number, origin: string): Promise<void> {
    const ev = await this.deps.core.events.get(eventId);
    if (!ev) return;
    for (const dest of await this.destinations.at(roomId, ev.stateGroup, ev.pdu)) {
      if (dest === origin) continue;
      const q = await this.queueFor(dest, pos - 1);
      q.add(pos, eventId);
      q.wake();
    }
  }

  /** Sends an EDU about a room to every other server with a joined member in it. */
  async sendEdu(roomId: string, edu: Edu): Promise<void> {
    const head = await this.deps.core.heads.get(roomId);
    if (!head) return;
    if (DURABLE_EDU_TYPES.has(edu.edu_type)) return this.sendEduToServers(await this.destinations.now(roomId), edu);
    for (const dest of await this.destinations.now(roomId)) {
      const q = await this.queueFor(dest, this.scanned);
      q.addEdu(edu);
      q.wake();
    }
  }

  /**
   * Sends an EDU that concerns no one room (device lists, to-device, presence) to the servers
   * named; never to this one. A durable EDU is stored before this resolves.
   */
  async sendEduToServers(servers: Iterable<string>, edu: Edu): Promise<void> {
    if (DURABLE_EDU_TYPES.has(edu.edu_type)) {
      servers = [...servers].filter((s) => s !== this.deps.serverName);
      if ((servers as string[]).length === 0) return;
      const stored = await this.deps.db.transaction().execute((trx) => this.storeEdusIn(trx, [...servers].map((destination) => ({ destination, edu }))));
      this.edusStored(stored);
      return;
    }
    for (const dest of servers) {
      if (dest === this.deps.serverName) continue;
      void this.queueFor(dest, this.scanned)
        .then((q) => {
          q.addEdu(edu);
          q.wake();
        })
        .catch((e: unknown) => this.deps.logger.warn({ err: e, destination: dest }, 'EDU not queued'));
    }
  }

  /**
   * Stores EDUs that must not be lost in `trx`, the transaction of the change they announce;
   * those for this server are left out. Returns the servers to pass to `edusStored` after commit.
   */
  async storeEdusIn(trx: DbOrTx, items: { destination: string; edu: Edu }[]): Promise<string[]> {
    const kept = items.filter((it) => it.destination !== this.deps.serverName);
    const destinations = [...new Set(kept.map((it) => it.destination))].sort();
    for (const dest of destinations) await insertDestination(trx, dest, this.scanned);
    await insertOutboundEdus(trx, kept, this.deps.now());
    return destinations;
  }

  /** After the commit of `storeEdusIn`: wakes the servers' queues, on whichever node owns them. */
  edusStored(destinations: string[]): void {
    for (const dest of destinations) this.deps.bus.invalidate({ cache: OUTBOUND_EDUS_CACHE, key: dest });
  }

  private wakeFor(destination: string): void {
    if (!this.started || destination === this.deps.serverName) return;
    void this.queueFor(destination, this.scanned)
      .then((q) => q.wake())
      .catch((e: unknown) => this.deps.logger.warn({ err: e, destination }, 'federation queue not woken'));
  }

  private pollStoredEdus(): void {
    if (!this.started) return;
    void selectEduDestinations(this.deps.db)
      .then((dests) => {
        for (const dest of dests) this.wakeFor(dest);
      })
      .catch((e: unknown) => this.deps.logger.warn({ err: e }, 'stored EDUs not looked up'));
  }

  // ---- QueueSource ----

  scannedPos(): number {
    return this.scanned;
  }

  async readFor(destination: string, after: number, upTo: number, limit: number) {
    const rows = await selectStreamEventsAfter(this.deps.db, after, upTo, limit);
    const events: { pos: number; eventId: string }[] = [];
    const loaded = await this.deps.core.events.getMany(rows.filter((r) => this.isLocal(r.sender)).map((r) => r.event_id));
    for (const r of rows) {
      const ev = loaded.get(r.event_id);
      if (ev && (await this.destinations.at(r.room_id, r.state_group, ev.pdu)).has(destination)) events.push({ pos: r.stream_pos, eventId: r.event_id });
    }
    const exhausted = rows.length < limit;
    return { events, lastPos: exhausted ? upTo : rows[rows.length - 1]!.stream_pos, exhausted };
  }

  async pdusOf(eventIds: string[]): Promise<Pdu[]> {
    const loaded = await this.deps.core.events.getMany(eventIds);
    return this.deps.reads.pdus(eventIds.map((id) => loaded.get(id)).filter((e) => e !== undefined));
  }

  async sendTransaction(destination: string, txnId: string, pdus: Pdu[], edus: Edu[], signal: AbortSignal): Promise<void> {
    const answer = await this.deps.client.request<{ pdus?: Record<string, { error?: string }> }>(destination, {
      method: 'PUT',
      path: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`,
      body: { origin: this.deps.serverName, origin_server_ts: this.deps.now(), pdus, edus },
      timeoutMs: 60_000,
      signal,
    });
    for (const [eventId, r] of Object.entries(answer.pdus ?? {})) {
      if (r?.error !== undefined) this.deps.logger.info({ destination, eventId, error: r.error }, 'remote server did not accept an event');
    }
  }

  // ---- the stream ----

  private isLocal(userId: string): boolean {
    return serverNameOf(userId) === this.deps.serverName;
  }

  private newQueue(destination: string, delivered: number, state: { catchingUp: boolean; failingSince: number | null; lastError: string | null; eduPos: number }): DestinationQueue {
    const { db, leases, logger, now } = this.deps;
    const queueLeases = this.shards?.leasesFor(destination) ?? leases;
    return new DestinationQueue(destination, delivered, { db, leases: queueLeases, logger, now, source: this, backoff: this.backoff, limits: this.limits }, state);
  }

  private async queueFor(destination: string, deliveredIfNew: number): Promise<DestinationQueue> {
    let q = this.queues.get(destination);
    if (q) return q;
    await insertDestination(this.deps.db, destination, deliveredIfNew);
    q = this.queues.get(destination);
    if (q) return q;
    // A queue made here for a server that another node registered takes its stored positions with its lease (resume).
    q = this.newQueue(destination, deliveredIfNew, { catchingUp: false, failingSince: null, lastError: null, eduPos: 0 });
    this.queues.set(destination, q);
    return q;
  }

  /** Sorts new events into queues; runs once at a time, again when the stream advanced meanwhile. */
  private scan(): void {
    if (!this.started) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = this.scanOnce()
      .catch((e: unknown) => this.deps.logger.error({ err: e }, 'federation sender could not read the events stream'))
      .finally(() => {
        this.scanning = null;
        if (this.rescan) {
          this.rescan = false;
          this.scan();
        }
      });
  }

  private async scanOnce(): Promise<void> {
    this.rescan = false;
    for (;;) {
      const rows = await selectStreamEventsAfter(this.deps.db, this.scanned, Number.MAX_SAFE_INTEGER, SCAN_PAGE);
      if (rows.length === 0) return;
      const local = rows.filter((r) => this.isLocal(r.sender));
      // Only a membership of another server's user needs its content read (see EventDestinations.at).
      const targetsElsewhere = local.filter((r) => r.type === 'm.room.member' && r.state_key !== null && !this.isLocal(r.state_key));
      const loaded = targetsElsewhere.length > 0 ? await this.deps.core.events.getMany(targetsElsewhere.map((r) => r.event_id)) : null;
      const woken = new Set<DestinationQueue>();
      for (const r of local) {
        const targets = await this.destinations.at(r.room_id, r.state_group, loaded?.get(r.event_id)?.pdu ?? null);
        for (const dest of targets) {
          const q = await this.queueFor(dest, r.stream_pos - 1);
          q.add(r.stream_pos, r.event_id);
          woken.add(q);
        }
      }
      this.scanned = rows[rows.length - 1]!.stream_pos;
      // Sorting an event again is harmless (a queue skips what it delivered), so the position is
      // written now and then rather than after every commit: a restart rereads a few seconds.
      if (this.deps.now() - this.persistedAt >= PERSIST_EVERY_MS) await this.persistScanned();
      for (const q of woken) q.wake();
      if (rows.length < SCAN_PAGE || !this.started) return;
    }
  }
}
