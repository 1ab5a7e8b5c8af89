/**
 * The joining server's second half of a partial-state join (MSC3706; joins-v2.yaml,
 * `omit_members`): once the join is stored with the state the resident server sent, which lacks
 * most members, the ids of the full state before the join are asked for with /state_ids
 * (events.yaml); when most of those events are not held here (a first join) the whole state
 * comes in one /state, else (a room joined again) only the missing events are fetched with
 * /event, as Synapse does. They are stored as outliers through the one inbound path, and the
 * rooms pipeline fills the state in (rooms/pipeline/fill-partial-state.ts). Until then the user
 * reads and sends, and events go to the servers the resident named.
 *
 * Work that survives: the partial mark is a row written with the join, so a restart resumes every
 * room still marked (`start`), and every node looks for marked rooms now and then. One owner:
 * each room's resync runs under a lease, and the fill's transaction is fenced by it, so two nodes
 * never fill the same room; a node that finds the lease held elsewhere leaves the room to the
 * next look, by which time a dead holder's lease has expired. A server that fails is left for the
 * next one the resident named; when all fail, the round is tried again after a growing pause.
 */
import type { Logger } from 'pino';
import type { Leases } from '../../cluster/leases.js';
import { computeEventId } from '../../core/hashes.js';
import type { RoomVersion } from '../../core/room-versions.js';
import { stateKey, type Pdu, type StateMap } from '../../core/types.js';
import type { InboundResult } from '../../rooms/inbound/receive.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import type { FederationClient } from '../client.js';

const FIRST_RETRY_MS = 2_000;
/**
 * Below this share of the state's events missing here, they are fetched one by one with /event
 * rather than all of them with /state (Synapse's rule: a tenth).
 */
const FETCH_ONE_BY_ONE_BELOW = 0.1;
/** /event requests in flight at once for one room. */
const EVENT_FETCHES = 8;
/** Events of the fetched state stored per batch (see storeOutliers). */
const OUTLIER_SLICE = 500;
const MAX_RETRY_MS = 5 * 60_000;
/**
 * How often the rooms still marked partial are looked for: a room whose resync another node
 * holds is left to it until then, and one whose holder died is taken over.
 */
const RESCAN_MS = 15_000;

export interface ResyncDeps {
  core: RoomsCore;
  client: FederationClient;
  leases: Leases;
  serverName: string;
  logger: Logger;
}

export class PartialStateResync {
  /** Rooms being resynced here, or waiting for a retry. */
  private readonly active = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  /** Aborts the /state requests in flight when the server stops. */
  private aborter = new AbortController();
  private rescanTimer: NodeJS.Timeout | undefined;
  private started = false;

  constructor(private readonly deps: ResyncDeps) {}

  /** Resumes every room still marked partial (after a restart), then looks again every RESCAN_MS. */
  async start(): Promise<void> {
    this.started = true;
    this.aborter = new AbortController();
    await this.rescan();
    this.rescanTimer = setInterval(() => void this.rescan(), RESCAN_MS);
    this.rescanTimer.unref();
  }

  /** Stops looking, aborts the requests in flight, and waits for the attempts running to end. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.rescanTimer = undefined;
    this.aborter.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all(this.running);
  }

  /** Runs one attempt, tracked so that `stop` can wait for it. */
  private run(roomId: string, delay: number): void {
    const p = this.attempt(roomId, delay).finally(() => this.running.delete(p));
    this.running.add(p);
  }

  private async rescan(): Promise<void> {
    try {
      for (const roomId of await this.deps.core.partialStateRoomIds()) this.schedule(roomId);
    } catch (e) {
      this.deps.logger.warn({ err: e }, 'partial-state resync: rooms not listed');
    }
  }

  /** Starts the resync of `roomId` unless it runs here already. */
  schedule(roomId: string): void {
    if (!this.started || this.active.has(roomId)) return;
    this.active.add(roomId);
    this.run(roomId, FIRST_RETRY_MS);
  }

  private later(roomId: string, ms: number, nextDelay: number): void {
    if (!this.started) {
      this.active.delete(roomId);
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.run(roomId, nextDelay);
    }, ms);
    this.timers.add(t);
  }

  private async attempt(roomId: string, delay: number): Promise<void> {
    const { core, leases, logger } = this.deps;
    if (!this.started) {
      this.active.delete(roomId);
      return;
    }
    const lease = await leases.acquire(`partial-state:${roomId}`).catch((e: unknown) => {
      logger.warn({ err: e, roomId }, 'partial-state resync: lease not taken');
      return null;
    });
    if (!lease) {
      // Another node resyncs the room; the rescan looks again.
      this.active.delete(roomId);
      return;
    }
    try {
      const head = await core.heads.get(roomId);
      if (!head?.partial) {
        this.active.delete(roomId);
        return;
      }
      const full = await this.fetchFullState(roomId, head.version, head.partial.joinEventId, head.partial.servers);
      if (full) {
        await core.pipeline.completePartialState(roomId, full, (trx) => leases.fence(trx, lease));
        logger.info({ roomId, stateEvents: full.size }, 'partial-state join: full state filled in');
        this.active.delete(roomId);
        return;
      }
    } catch (e) {
      logger.warn({ err: e, roomId }, 'partial-state resync failed');
    } finally {
      await leases.release(lease).catch(() => undefined);
    }
    this.later(roomId, delay, Math.min(delay * 2, MAX_RETRY_MS));
  }

  /**
   * Stores `events` as outliers in slices, shallowest first (an event's auth events are older, so
   * they come in the same or an earlier slice), so that the room's queue, and the user's sends
   * in it, are never held for the whole state at once; an event whose auth events came later
   * after all is tried again at the end.
   */
  private async storeOutliers(roomId: string, events: unknown[]): Promise<InboundResult[]> {
    const depth = (e: unknown) => {
      const d = (e as { depth?: unknown })?.depth;
      return typeof d === 'number' ? d : 0;
    };
    const sorted = [...events].sort((x, y) => depth(x) - depth(y));
    const results = new Map<string | undefined, InboundResult>();
    const missing: unknown[] = [];
    for (let i = 0; i < sorted.length; i += OUTLIER_SLICE) {
      const slice = sorted.slice(i, i + OUTLIER_SLICE);
      const got = await this.deps.core.inbound.receive(roomId, { pdus: [], outliers: slice });
      for (const r of got) results.set(r.eventId, r);
      if (got.some((r) => r.status === 'missing')) missing.push(...slice);
    }
    if (missing.length > 0) for (const r of await this.deps.core.inbound.receive(roomId, { pdus: [], outliers: missing })) results.set(r.eventId, r);
    return [...results.values()];
  }

  /**
   * The state before the join from the first server that gives one whose events all store here
   * (as outliers, checked like any received event); undefined when none does.
   */
  private async fetchFullState(roomId: string, version: RoomVersion, joinEventId: string, servers: readonly string[]): Promise<StateMap | undefined> {
    const { core, logger, serverName } = this.deps;
    for (const server of servers) {
      if (server === serverName) continue;
      try {
        const fetched = await this.fetchStateEvents(server, roomId, version, joinEventId);
        const results = await this.storeOutliers(roomId, fetched.events);
        const full: StateMap = new Map();
        const stored = await core.events.getMany(fetched.stateIds);
        for (const id of fetched.stateIds) {
          const pdu = stored.get(id)?.pdu;
          if (typeof pdu?.type === 'string' && typeof pdu.state_key === 'string') full.set(stateKey(pdu.type, pdu.state_key), id);
        }
        const unusable = new Set(results.filter((r) => r.status !== 'outlier' && r.status !== 'duplicate').map((r) => r.eventId));
        const bad = fetched.stateIds.filter((id) => unusable.has(id) || !stored.has(id) || stored.get(id)!.rejectedReason !== null);
        if (full.size === 0 || bad.length > 0) {
          logger.info({ roomId, server, unusable: bad.length }, 'partial-state resync: the state a server sent could not be used');
          continue;
        }
        return full;
      } catch (e) {
        logger.info({ roomId, server, err: (e as Error).message }, 'partial-state resync: the state was not had');
      }
    }
    return undefined;
  }

  /**
   * The ids of the state before the join, and the events of it and of its auth chain not held
   * here: all of them from /state when most are missing, else the missing ones from /event.
   */
  private async fetchStateEvents(server: string, roomId: string, version: RoomVersion, joinEventId: string): Promise<{ stateIds: string[]; events: unknown[] }> {
    const { client, core } = this.deps;
    const query = `${encodeURIComponent(roomId)}?event_id=${encodeURIComponent(joinEventId)}`;
    const opts = { timeoutMs: 120_000, maxBytes: 256 * 1024 * 1024, signal: this.aborter.signal };
    const ids = await client.request<{ pdu_ids?: unknown; auth_chain_ids?: unknown }>(server, { method: 'GET', path: `/_matrix/federation/v1/state_ids/${query}`, ...opts });
    const strings = (v: unknown) => (Array.isArray(v) ? v.filter((id): id is string => typeof id === 'string') : []);
    const stateIds = strings(ids.pdu_ids);
    const wanted = [...new Set([...stateIds, ...strings(ids.auth_chain_ids)])];
    const held = await core.events.getMany(wanted);
    const missing = wanted.filter((id) => !held.has(id));
    if (missing.length >= wanted.length * FETCH_ONE_BY_ONE_BELOW) {
      const answer = await client.request<{ pdus?: unknown; auth_chain?: unknown }>(server, { method: 'GET', path: `/_matrix/federation/v1/state/${query}`, ...opts });
      const pdus = Array.isArray(answer.pdus) ? (answer.pdus as Pdu[]) : [];
      const authChain = Array.isArray(answer.auth_chain) ? answer.auth_chain : [];
      return { stateIds: pdus.filter((ev) => typeof ev?.type === 'string' && typeof ev.state_key === 'string').map((ev) => computeEventId(ev, version)), events: [...authChain, ...pdus] };
    }
    const events: unknown[] = [];
    for (let i = 0; i < missing.length; i += EVENT_FETCHES) {
      const answers = await Promise.all(
        missing.slice(i, i + EVENT_FETCHES).map((id) => client.request<{ pdus?: unknown }>(server, { method: 'GET', path: `/_matrix/federation/v1/event/${encodeURIComponent(id)}`, timeoutMs: 30_000, signal: this.aborter.signal })),
      );
      for (const a of answers) if (Array.isArray(a.pdus)) events.push(...a.pdus);
    }
    return { stateIds, events };
  }
}
