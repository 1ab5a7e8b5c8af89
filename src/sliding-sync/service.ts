import { randomBytes } from 'node:crypto';
import type { Context, Lifecycle } from '../context.js';
import type { JsonObject } from '../core/types.js';
import {
  ANNOUNCED_STREAMS,
  readStreamPositions,
  readStreamPositionsWithThreadSubscriptions,
  type AnnouncedStream,
  type WaitHeads,
} from '../db/stream-positions.js';
import { MatrixError } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { RoomActivity } from '../sync/room-activity.js';
import { clampToken, formatSyncToken, tryParseSyncToken, type SyncToken } from '../sync/token.js';
import { configSignature, decodeState, encodeState, type ConnectionState } from './connection-state.js';
import {
  deleteConnections,
  deletePositionsOtherThan,
  deleteSurplusChildren,
  insertConnection,
  insertPosition,
  selectConnection,
  selectConnectionKey,
  selectIdleConnections,
  selectPosition,
  selectSurplusConnections,
  touchConnection,
} from './connection-store.js';
import { ExtensionsBuilder } from './extensions.js';
import { parseRequest, type SlidingRequest } from './request.js';
import { RoomBuilder, type RoomPlan } from './room-builder.js';
import { DirectRooms } from './direct-rooms.js';
import { RoomFacts } from './room-facts.js';
import { filterInputs, listWindow, serverRoomList } from './room-list.js';

/**
 * Simplified sliding sync (MSC4186). A connection's state lives in the
 * database, one row per position handed out, so any node can continue it;
 * a request builds on the position it names, and its answer is stored as a
 * new position only when it is sent. Long-polls wait on the notifier that
 * /sync uses.
 */

/** Connections one device may keep; the least recently used go first. */
const CONNECTIONS_PER_DEVICE = 10;
/** Answers to retries of one request kept in case the client uses them. */
const RETRIES_KEPT = 5;
const SWEEP_BATCH = 100;
const TOUCH_EVERY_MS = 60_000;

export const unknownPos = () => new MatrixError(400, 'M_UNKNOWN_POS', 'Unknown or expired position: start a new connection');

interface OpenConnection {
  connKey: string;
  parentId: string;
  state: ConnectionState | null;
  lastUsed: number;
  /** The position the request named. */
  pos: string | null;
}

interface Computed {
  body: JsonObject;
  state: ConnectionState;
  news: boolean;
  watchRooms: string[];
}

export class SlidingSyncService implements Lifecycle {
  private readonly facts: RoomFacts;
  private readonly direct: DirectRooms;
  private readonly activity: RoomActivity;
  private readonly rooms: RoomBuilder;
  private readonly extensions: ExtensionsBuilder;
  /**
   * The highest position of each stream announced on the bus: committed,
   * since writers publish after commit. A woken request computes from these
   * instead of reading the heads again.
   */
  private readonly announced = Object.fromEntries(ANNOUNCED_STREAMS.map((s) => [s, 0])) as Record<AnnouncedStream, number>;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly ctx: Context) {
    this.facts = new RoomFacts(ctx);
    this.direct = new DirectRooms(ctx);
    this.activity = new RoomActivity((roomIds, fromPos, toPos) => ctx.services.rooms.getRoomsWithEventsBetween(roomIds, fromPos, toPos));
    this.rooms = new RoomBuilder(ctx, this.activity);
    this.extensions = new ExtensionsBuilder(ctx, this.activity);
  }

  async start(): Promise<void> {
    // The bus hands each message to every listener before a woken request resumes (on a promise),
    // so a woken request finds the position that woke it here.
    this.unsubscribe ??= this.ctx.bus.onAdvance((msg) => {
      if (msg.pos > this.announced[msg.stream]) this.announced[msg.stream] = msg.pos;
    });
    this.facts.start();
    this.direct.start();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.facts.stop();
    this.direct.stop();
  }

  private get idleMs(): number {
    return this.ctx.config.sliding_sync.connection_idle_ms;
  }

  async sync(requester: Requester, body: unknown, query: Record<string, unknown>, onClose: (fn: () => void) => void): Promise<JsonObject> {
    const req = parseRequest(body, query);
    const { userId } = requester;
    const conn = await this.open(requester, req);
    const sync = this.ctx.services.sync;
    const done = await sync.presence.syncStarted(userId, req.setPresence);
    // Registered before the first read of the stream heads, so no advance can slip between.
    const waiter = sync.notifier.register(userId);
    onClose(() => waiter.cancel());
    try {
      const deadline = Date.now() + (conn.state ? req.timeoutMs : 0);
      // With the MSC4308 extension on, a thread subscription change is news too: the waiter follows that counter.
      const followThreads = req.extensions.threadSubscriptions.enabled;
      let known: WaitHeads | null = null;
      for (;;) {
        const heads = known ?? (followThreads ? await readStreamPositionsWithThreadSubscriptions(this.ctx.db) : await readStreamPositions(this.ctx.db));
        const r = await this.compute(requester, req, conn.state, heads);
        const remaining = deadline - Date.now();
        if (r.news || conn.state === null || remaining <= 0) return await this.commit(conn, r);
        waiter.arm(r.watchRooms, heads);
        if (!(await waiter.wait(remaining))) return await this.commit(conn, r);
        known = maxPositions(heads, this.announced);
      }
    } finally {
      waiter.close();
      done();
    }
  }

  /** The connection and the position the request builds on; a request without `pos` starts the connection afresh. */
  private async open(requester: Requester, req: SlidingRequest): Promise<OpenConnection> {
    const { userId, deviceId } = requester;
    const db = this.ctx.db;
    const now = this.ctx.now();
    if (req.pos !== null) {
      const parsed = parsePos(req.pos);
      if (!parsed) throw unknownPos();
      const { connKey, posId } = parsed;
      const conn = await selectConnection(db, connKey);
      if (!conn || conn.user_id !== userId || conn.device_id !== deviceId || conn.conn_id !== req.connId) throw unknownPos();
      if (conn.last_used_ts < now - this.idleMs) {
        await deleteConnections(db, [connKey]);
        throw unknownPos();
      }
      const row = await selectPosition(db, connKey, posId);
      if (!row) throw unknownPos();
      return { connKey, parentId: posId, state: decodeState(row.state), lastUsed: conn.last_used_ts, pos: req.pos };
    }
    const connKey = randomBytes(8).toString('hex');
    await db.transaction().execute(async (trx) => {
      const old = await selectConnectionKey(trx, userId, deviceId, req.connId);
      if (old) await deleteConnections(trx, [old]);
      await insertConnection(trx, { conn_key: connKey, user_id: userId, device_id: deviceId, conn_id: req.connId, created_ts: now, last_used_ts: now });
      await deleteConnections(trx, await selectSurplusConnections(trx, userId, deviceId, CONNECTIONS_PER_DEVICE));
    });
    // Connections nobody used for a while are dropped as new ones start.
    await deleteConnections(db, await selectIdleConnections(db, now - this.idleMs, SWEEP_BATCH));
    return { connKey, parentId: '', state: null, lastUsed: now, pos: null };
  }

  /** Whether a token has the shape of a `pos` (other tokens never do: they start with `s` or `t`). */
  isPos(token: string): boolean {
    return parsePos(token) !== null;
  }

  /**
   * The events position a `pos` of one of the user's connections covered
   * (MSC4186: a `pos` can be used in `/messages` and `/relations`; MSC4360's
   * `/thread_updates` takes it as `to`); null when the position is unknown
   * or gone.
   */
  async eventsAt(viewer: { userId: string }, pos: string): Promise<number | null> {
    const parsed = parsePos(pos);
    if (!parsed) return null;
    const conn = await selectConnection(this.ctx.db, parsed.connKey);
    if (!conn || conn.user_id !== viewer.userId) return null;
    const row = await selectPosition(this.ctx.db, parsed.connKey, parsed.posId);
    const heads = row ? tryParseSyncToken(decodeState(row.state).heads) : null;
    return heads?.events ?? null;
  }

  /**
   * Stores the answer as a position, in one transaction: the client named
   * `parentId`, so every other position it could still name is that one or
   * one computed from it, and the rest go.
   */
  private async commit(conn: OpenConnection, r: Computed): Promise<JsonObject> {
    const now = this.ctx.now();
    // Expiry counts in minutes: the last use is written again only when it is that old.
    const touch = now - conn.lastUsed > Math.min(TOUCH_EVERY_MS, this.idleMs / 4);
    // An answer with nothing in it leaves the client where it was: the same position serves again.
    if (!r.news && conn.parentId !== '' && conn.pos !== null) {
      if (touch) await touchConnection(this.ctx.db, conn.connKey, now);
      return { pos: conn.pos, ...r.body };
    }
    const posId = randomBytes(6).toString('hex');
    await this.ctx.db.transaction().execute(async (trx) => {
      await insertPosition(trx, { conn_key: conn.connKey, pos_id: posId, parent_id: conn.parentId, created_ts: now, state: encodeState(r.state) });
      if (conn.parentId !== '') {
        await deletePositionsOtherThan(trx, conn.connKey, conn.parentId);
        await deleteSurplusChildren(trx, conn.connKey, conn.parentId, RETRIES_KEPT);
      }
      if (touch) await touchConnection(trx, conn.connKey, now);
    });
    return { pos: `${conn.connKey}_${posId}`, ...r.body };
  }

  private async compute(requester: Requester, req: SlidingRequest, prev: ConnectionState | null, heads: SyncToken): Promise<Computed> {
    const { userId, deviceId } = requester;
    const ctx = this.ctx;
    const prevToken = prev ? tryParseSyncToken(prev.heads) : null;
    const prevHeads = prevToken ? clampToken(prevToken, heads) : null;
    const [allMemberships, ignored, blocksInvites, dmRooms] = await Promise.all([
      ctx.services.rooms.getMemberships(userId),
      ctx.services.sync.accountData.ignoredUsers(userId),
      ctx.services.sync.accountData.blocksInvites(userId),
      this.direct.of(userId),
    ]);
    // Invites stay hidden while the user blocks them (spec: "Invite permission").
    const memberships = blocksInvites ? allMemberships.filter((m) => m.membership !== 'invite') : allMemberships;
    const list = await serverRoomList(ctx, this.facts, userId, memberships, (id) => prev?.rooms[id] !== undefined, heads.events);
    const configs = [...req.lists.values()];
    const inputs = await filterInputs(ctx, this.facts, dmRooms, userId, list, configs, heads.events);

    // Every matched room with its combined config (MSC4186 "Combining room configs").
    const byId = new Map(list.map((r) => [r.roomId, r]));
    const plans = new Map<string, RoomPlan>();
    const plan = (roomId: string): RoomPlan | null => {
      const room = byId.get(roomId);
      if (!room) return null;
      let p = plans.get(roomId);
      if (!p) plans.set(roomId, (p = { room, lists: [], timelineLimit: 0, requiredState: [], sig: '', prev: prev?.rooms[roomId] }));
      return p;
    };
    const lists: JsonObject = {};
    const counts: Record<string, number> = {};
    const listRooms = new Map<string, string[]>();
    for (const [name, config] of req.lists) {
      const w = listWindow(list, config, inputs);
      lists[name] = { count: w.count };
      counts[name] = w.count;
      listRooms.set(name, w.roomIds);
      for (const roomId of w.roomIds) {
        const p = plan(roomId)!;
        p.lists.push(name);
        p.timelineLimit = Math.max(p.timelineLimit, config.timelineLimit);
        p.requiredState.push(config.requiredState);
      }
    }
    const subscribed: string[] = [];
    for (const [roomId, config] of req.subscriptions) {
      // Only rooms the user is in, invited to or knocked on; others are ignored (MSC4186 "Subscriptions").
      const m = byId.get(roomId)?.m.membership;
      if (m !== 'join' && m !== 'invite' && m !== 'knock') continue;
      const p = plan(roomId)!;
      subscribed.push(roomId);
      p.timelineLimit = Math.max(p.timelineLimit, config.timelineLimit);
      p.requiredState.push(config.requiredState);
    }
    for (const p of plans.values()) p.sig = configSignature(p.requiredState);

    const built = await this.rooms.build({ userId, deviceId, heads, prevHeads, dmRooms: inputs.dmRooms, ignored }, [...plans.values()]);
    const initialRooms = new Set([...built.rooms].filter(([, b]) => b.initial === true).map(([id]) => id));
    const ext = await this.extensions.build(req.extensions, {
      userId,
      deviceId,
      heads,
      prevHeads,
      listRooms,
      subscribedRooms: subscribed,
      initialRooms,
      memberships,
      prevThreadSubs: prev?.threadSubs ?? null,
      timelineFrom: built.timelineFrom,
      threadsBefore: prev?.threads === true,
    });

    const countsChanged = Object.entries(counts).some(([name, n]) => prev?.counts[name] !== n);
    const toDevice = req.extensions.toDevice.enabled ? ext.toDevicePos : (prevHeads?.to_device ?? 0);
    const state: ConnectionState = {
      heads: formatSyncToken({ ...heads, to_device: toDevice }),
      rooms: { ...(prev?.rooms ?? {}), ...Object.fromEntries(built.sent) },
      counts,
    };
    const threadSubs = ext.threadSubsPos ?? prev?.threadSubs;
    if (threadSubs !== undefined) state.threadSubs = threadSubs;
    if (req.extensions.threads.enabled || prev?.threads === true) state.threads = true;
    const body: JsonObject = { lists, rooms: Object.fromEntries(built.rooms), extensions: ext.body };
    return {
      body,
      state,
      news: built.rooms.size > 0 || countsChanged || ext.news,
      watchRooms: memberships.filter((m) => m.membership === 'join').map((m) => m.roomId),
    };
  }
}

/** A `pos` is `<connection key>_<position id>`. */
function parsePos(pos: string): { connKey: string; posId: string } | null {
  const m = /^([0-9a-f]{16})_([0-9a-f]{12})$/.exec(pos);
  return m ? { connKey: m[1]!, posId: m[2]! } : null;
}

/** `a` raised to what `b` announced, for the streams `a` follows. */
function maxPositions(a: WaitHeads, b: Record<AnnouncedStream, number>): WaitHeads {
  const out = { ...a };
  for (const s of ANNOUNCED_STREAMS) {
    const known = out[s];
    if (known !== undefined && b[s] > known) out[s] = b[s];
  }
  return out;
}
