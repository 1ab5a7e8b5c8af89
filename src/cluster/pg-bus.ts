import type { Logger } from 'pino';
import postgres from 'postgres';
import { reconnectDelaySeconds } from '../db/connect.js';
import type { Db, Tx } from '../db/schema.js';
import { ANNOUNCED_STREAMS, readAllCounters, type StreamName } from '../db/stream-positions.js';
import { ALL_KEYS, LocalBus, type Bus, type CacheInvalidation, type StreamAdvance } from './bus.js';
import { insertInvalidations, selectInvalidations } from './cache-invalidations-table.js';
import type { StreamChanges } from './events-catch-up.js';

const CHANNEL = 'hearth_bus';
/** NOTIFY payloads must stay under 8000 bytes. */
const MAX_PAYLOAD = 7000;
/** More invalidations than this behind: flush instead of replaying (CLUSTER.md 9). */
const MAX_REPLAY = 10_000;
const EVENTS_CHUNK = 2000;

export interface PgBusOptions {
  /** The database URL (several hosts allowed); the bus opens its own two connections. */
  url: string;
  db: Db;
  nodeId: string;
  logger: Logger;
  now(): number;
  /**
   * Every counter's head and, from the same snapshot, the events stream after
   * `after` read back as announcements (events-catch-up.ts): what each
   * catch-up reads first, in one round trip.
   */
  headsAndEventsAfter(after: number, limit: number): Promise<{ heads: Map<string, number>; events: StreamChanges }>;
  /** The events stream read back as announcements, for the chunks after the first. */
  eventsBetween(after: number, upTo: number, limit: number): Promise<StreamChanges>;
  pollMs?: number;
  heartbeatMs?: number;
  silenceMs?: number;
}

/** What one NOTIFY carries: who sent it, and hints of what changed (the tables hold the truth). */
interface Poke {
  n: string;
  a?: StreamAdvance[];
  i?: CacheInvalidation[];
  hb?: 1;
}

/**
 * The cluster bus (CLUSTER.md 3). Local consumers hear this node's
 * announcements at once, as with one node. Other nodes learn of them by a
 * NOTIFY poke sent after commit, in a transaction of its own that does not
 * wait for the synchronous standby, coalesced while one is in flight.
 * A poke is only a hint: the events stream and the cache invalidation
 * stream are read back by position on every poke, every `settle()`, every
 * poll (2 s) and after every reconnect, so a lost poke costs latency, never
 * a stale cache. Invalidations are applied before the advances that follow
 * them; state derived from other streams' announcements (typing, a few
 * caches) is rebuilt through `onMissed` when a head shows one was missed.
 * The listener heartbeats to itself and is replaced when it closes or
 * after a silence.
 */
export class PgBus implements Bus {
  private readonly local = new LocalBus();
  private readonly pollMs: number;
  private readonly heartbeatMs: number;
  private readonly silenceMs: number;
  /** Positions whose changes are reflected here: contiguous for the two table-read streams, the highest heard for the others. */
  private readonly seen = new Map<string, number>();
  /** Events this node announced itself, not to be announced again when read back. */
  private readonly ownEvents = new Set<number>();
  private readonly repairs = new Map<string, Array<(head: number) => Promise<void> | void>>();
  /** Per stream, the head up to which repairs already ran. */
  private readonly repaired = new Map<string, number>();
  private listener: postgres.Sql | null = null;
  private readonly sender: postgres.Sql;
  private outbox: Poke | null = null;
  private sending: Promise<void> | null = null;
  private lastHeard = 0;
  /** When the listener last heard another node (Date.now()); 0 when it never has. */
  private lastHeardOther = 0;
  /** When the listener (re)connected: what it hears is known from then on. */
  private listeningSince = 0;
  private reconnecting = false;
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private queuedGaps = false;
  private closed = false;
  listening = false;

  constructor(private readonly opts: PgBusOptions) {
    this.pollMs = opts.pollMs ?? 2000;
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.silenceMs = opts.silenceMs ?? 3000;
    // A poke is a hint: its commit need not wait for the synchronous standby.
    this.sender = postgres(opts.url, connectionOptions('hearth-bus-sender', { synchronous_commit: 'off' }));
  }

  async start(): Promise<void> {
    // Everything committed before this node started is already in the database, and its caches are empty.
    for (const [stream, pos] of await readAllCounters(this.opts.db)) this.seen.set(stream, pos);
    await this.connect();
    // Heard by the other nodes before this one serves anything: from then on their settle() reads
    // what it commits.
    this.poke({ hb: 1 });
    await this.sending;
    this.timers.push(setInterval(() => this.heartbeat(), this.heartbeatMs));
    this.timers.push(setInterval(() => void this.catchUp(true).catch((err) => this.opts.logger.warn({ err }, 'bus poll failed')), this.pollMs));
    for (const t of this.timers) t.unref();
  }

  // ---- this node's announcements ----

  publish(msg: StreamAdvance): void {
    if (msg.stream === 'events') {
      let seen = this.seen.get('events') ?? 0;
      if (msg.pos === seen + 1) {
        // Commit order is position order, so everything below this committed event is read:
        // the stream is seen up to it (and up to this node's own events right after it) without
        // reading it back.
        seen = msg.pos;
        while (this.ownEvents.delete(seen + 1)) seen++;
        this.seen.set('events', seen);
      } else if (msg.pos > seen) {
        this.ownEvents.add(msg.pos);
      }
    } else {
      this.seen.set(msg.stream, Math.max(this.seen.get(msg.stream) ?? 0, msg.pos));
    }
    this.local.publish(msg);
    // Other nodes read the events themselves: the poke only says where the stream is.
    this.poke({ a: [msg.stream === 'events' ? { stream: 'events', pos: msg.pos } : msg] });
  }

  invalidate(msg: CacheInvalidation): void {
    this.local.invalidate(msg);
    this.poke({ i: [msg] });
  }

  invalidateIn(trx: Tx, msgs: CacheInvalidation[]): Promise<void> {
    return insertInvalidations(trx, msgs, this.opts.now());
  }

  onAdvance(fn: (msg: StreamAdvance) => void): () => void {
    return this.local.onAdvance(fn);
  }

  onInvalidate(fn: (msg: CacheInvalidation) => void): () => void {
    return this.local.onInvalidate(fn);
  }

  onMissed(stream: StreamName, fn: (head: number) => Promise<void> | void): void {
    let list = this.repairs.get(stream);
    if (!list) this.repairs.set(stream, (list = []));
    list.push(fn);
  }

  private poke(p: Omit<Poke, 'n'>): void {
    if (this.closed) return;
    const box = (this.outbox ??= { n: this.opts.nodeId });
    if (p.a) (box.a ??= []).push(...p.a);
    if (p.i) (box.i ??= []).push(...p.i);
    if (p.hb) box.hb = 1;
    this.sending ??= this.drain();
  }

  /** Sends what accumulated, then what accumulated meanwhile: one NOTIFY transaction in flight at a time. */
  private async drain(): Promise<void> {
    try {
      while (this.outbox && !this.closed) {
        const box = this.outbox;
        this.outbox = null;
        const payloads = splitPoke(box);
        try {
          // Each NOTIFY commits on its own: one round trip, and the sender connection's
          // synchronous_commit is off, so it does not wait for the synchronous standby (CLUSTER.md 3).
          for (const p of payloads) await this.sender`select pg_notify(${CHANNEL}, ${p})`;
        } catch (err) {
          // Lost pokes are repaired by the others' polls.
          this.opts.logger.warn({ err }, 'bus poke failed');
        }
      }
    } finally {
      this.sending = null;
    }
  }

  // ---- other nodes' announcements ----

  private onPoke(payload: string): void {
    this.lastHeard = Date.now();
    let p: Poke;
    try {
      p = JSON.parse(payload) as Poke;
    } catch {
      return;
    }
    if (p.n === this.opts.nodeId) return;
    this.lastHeardOther = Date.now();
    for (const i of p.i ?? []) this.local.invalidate(i);
    let events = false;
    for (const a of p.a ?? []) {
      if (a.stream === 'events') {
        events = true;
        continue;
      }
      this.seen.set(a.stream, Math.max(this.seen.get(a.stream) ?? 0, a.pos));
      this.local.publish(a);
    }
    if (events) void this.settle().catch((err) => this.opts.logger.warn({ err }, 'bus catch-up failed'));
  }

  /**
   * Reads back what other nodes committed before the call (the caller is about to serve a request
   * that may depend on it). A node that has heard no other for `silenceMs`, with a listener that has
   * been up as long, is alone on the database: every node pokes on start and then every
   * `heartbeatMs`, so there is nothing of another's to read, and the request does not wait for a
   * statement. The poll still reads what was written without a node (the command line).
   */
  settle(): Promise<void> {
    if (this.alone()) return Promise.resolve();
    return this.catchUp(false);
  }

  private alone(): boolean {
    return this.listening && Date.now() - Math.max(this.lastHeardOther, this.listeningSince) > this.silenceMs;
  }

  /**
   * A catch-up that starts after this call (one runs at a time; callers
   * arriving meanwhile share the next one). With `gaps`, streams only
   * announced by pokes are compared with their heads, and a gap (a lost
   * poke) wakes every waiter behind it.
   */
  private catchUp(gaps: boolean): Promise<void> {
    if (!this.running) {
      this.running = this.readBack(gaps).finally(() => {
        this.running = null;
      });
      return this.running;
    }
    this.queuedGaps ||= gaps;
    this.queued ??= this.running.then(
      () => this.startQueued(),
      () => this.startQueued(),
    );
    return this.queued;
  }

  private startQueued(): Promise<void> {
    const gaps = this.queuedGaps;
    this.queued = null;
    this.queuedGaps = false;
    return this.catchUp(gaps);
  }

  private async readBack(gaps: boolean): Promise<void> {
    const from = this.seen.get('events') ?? 0;
    const { heads, events } = await this.opts.headsAndEventsAfter(from, EVENTS_CHUNK);
    await this.replayInvalidations(heads.get('cache_invalidations') ?? 0);
    await this.replayEvents(heads.get('events') ?? 0, { from, changes: events });
    for (const stream of ANNOUNCED_STREAMS) {
      if (stream === 'events') continue;
      const head = heads.get(stream) ?? 0;
      if (head <= (this.seen.get(stream) ?? 0)) continue;
      // Announcements missed, or still on their way: what was derived from them is rebuilt from the tables.
      if (head > (this.repaired.get(stream) ?? 0)) {
        this.repaired.set(stream, head);
        for (const fn of this.repairs.get(stream) ?? []) await fn(head);
      }
      if (!gaps) continue;
      // Still unheard at the poll: the poke was lost, and whom it concerned is unknown.
      this.seen.set(stream, head);
      this.local.publish({ stream, pos: head, everyone: true });
    }
  }

  private async replayInvalidations(head: number): Promise<void> {
    const from = this.seen.get('cache_invalidations') ?? 0;
    if (head <= from) return;
    const rows = head - from > MAX_REPLAY ? [] : await selectInvalidations(this.opts.db, from, head, MAX_REPLAY);
    // Rows pruned or too many: what changed is unknown, so everything cached may be stale.
    if (rows.length !== head - from) this.local.invalidate({ cache: ALL_KEYS, key: ALL_KEYS });
    else for (const r of rows) this.local.invalidate({ cache: r.cache, key: r.key });
    this.seen.set('cache_invalidations', Math.max(this.seen.get('cache_invalidations') ?? 0, head));
  }

  /** Announces the events up to `head`, starting with `first`, read with the heads from where the stream was seen then. */
  private async replayEvents(head: number, first: { from: number; changes: StreamChanges }): Promise<void> {
    let read: typeof first | null = first;
    while ((this.seen.get('events') ?? 0) < head) {
      const from = this.seen.get('events') ?? 0;
      const changes = read && read.from <= from && read.changes.readTo > from ? read.changes : await this.opts.eventsBetween(from, head, EVENTS_CHUNK);
      read = null;
      for (const i of changes.invalidations) this.local.invalidate(i);
      for (const a of changes.advances) {
        // At or below `from`: this node's own events, announced by publish() while the read was on its way.
        if (a.pos <= from || this.ownEvents.delete(a.pos)) continue;
        this.local.publish(a);
      }
      this.seen.set('events', Math.max(this.seen.get('events') ?? 0, changes.readTo));
    }
    for (const p of this.ownEvents) if (p <= head) this.ownEvents.delete(p);
  }

  // ---- the listener and its health ----

  private async connect(): Promise<void> {
    // A plain connection that LISTENs, rather than postgres.js's listen(), which re-listens on its own
    // connections behind the bus's back: the bus alone decides when its listener is replaced.
    const client: postgres.Sql = postgres(this.opts.url, {
      ...connectionOptions('hearth-bus-listener'),
      max_lifetime: null,
      onnotify: (_channel: string, payload: string) => this.onPoke(payload),
      onclose: () => {
        if (this.listener === client && !this.closed && !this.reconnecting) void this.reconnect();
      },
    } as postgres.Options<{}>);
    let timer: NodeJS.Timeout | undefined;
    try {
      // postgres.js retries a refused connection by itself; the bus gives up sooner and tries afresh.
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the bus listener did not connect in time')), this.silenceMs * 2);
      });
      await Promise.race([
        (async () => {
          await client.unsafe(`listen ${CHANNEL}`);
          const [row] = await client`select pg_is_in_recovery() as standby`;
          if (row?.standby) throw new Error('the bus listener reached a standby');
        })(),
        timeout,
      ]);
    } catch (err) {
      await client.end({ timeout: 0 }).catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
    this.listener = client;
    this.lastHeard = Date.now();
    this.listeningSince = this.lastHeard;
    this.listening = true;
  }

  private heartbeat(): void {
    if (this.closed) return;
    this.poke({ hb: 1 });
    if (Date.now() - this.lastHeard > this.silenceMs && !this.reconnecting) void this.reconnect();
  }

  /** The listener closed or went silent (failover, cut link): replace it and read back what was missed. */
  private async reconnect(): Promise<void> {
    this.reconnecting = true;
    this.listening = false;
    this.opts.logger.warn({ silentMs: Date.now() - this.lastHeard }, 'bus listener lost: reconnecting');
    const old = this.listener;
    this.listener = null;
    try {
      await old?.end({ timeout: 0 }).catch(() => {});
      if (this.closed) return;
      await this.connect();
      await this.catchUp(true);
      this.opts.logger.info('bus listener reconnected');
    } catch (err) {
      this.opts.logger.warn({ err }, 'bus reconnect failed; retrying');
    } finally {
      this.reconnecting = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listening = false;
    for (const t of this.timers) clearInterval(t);
    await this.sending;
    await Promise.allSettled([this.running, this.queued]);
    await this.listener?.end({ timeout: 1 });
    await this.sender.end({ timeout: 1 });
    await this.local.close();
  }
}

/** The bus's own connections: one each, to the primary, named so operators can tell them apart. */
function connectionOptions(name: string, settings: Record<string, string> = {}): postgres.Options<{}> {
  return {
    max: 1,
    onnotice: () => {},
    target_session_attrs: 'primary',
    keep_alive: 30,
    connect_timeout: 5,
    backoff: reconnectDelaySeconds,
    connection: { application_name: name, ...settings },
  } as postgres.Options<{}>;
}

/** One poke as NOTIFY payloads under the size limit; an advance whose audience is too long to carry wakes everyone instead. */
export function splitPoke(box: Poke): string[] {
  const out: string[] = [];
  let cur: Poke = { n: box.n, ...(box.hb ? { hb: 1 as const } : {}) };
  let size = JSON.stringify(cur).length;
  const flush = () => {
    out.push(JSON.stringify(cur));
    cur = { n: box.n };
    size = JSON.stringify(cur).length;
  };
  const add = (kind: 'a' | 'i', item: StreamAdvance | CacheInvalidation) => {
    let json = JSON.stringify(item);
    if (json.length > MAX_PAYLOAD - 100) {
      if (kind === 'i') item = { cache: (item as CacheInvalidation).cache, key: ALL_KEYS };
      else item = { stream: (item as StreamAdvance).stream, pos: (item as StreamAdvance).pos, everyone: true };
      json = JSON.stringify(item);
    }
    if (size + json.length + 8 > MAX_PAYLOAD) flush();
    ((cur[kind] ??= []) as unknown[]).push(item);
    size += json.length + 8;
  };
  for (const a of box.a ?? []) add('a', a);
  for (const i of box.i ?? []) add('i', i);
  out.push(JSON.stringify(cur));
  return out;
}
