import { boundedCache } from '../bounded-cache.js';
import type { Lease } from '../cluster/leases.js';
import type { Context } from '../context.js';
import { serverNameOf } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import { nextPosition } from '../db/stream-positions.js';
import { lockPresenceIfUnchanged, selectNotOffline, selectPresence, selectPresenceChanges, updatePresenceTimes, upsertPresence } from './presence-store.js';
import type { PresenceRow } from './tables.js';

export type PresenceState = 'online' | 'unavailable' | 'offline';

/** Within this window of the last activity the user is `currently_active`. */
const ACTIVE_WINDOW_MS = 60_000;
/**
 * Activity timestamps are written, and the timeouts swept, at most this often; shorter timeouts
 * (a test's) shorten both, so that a user who keeps syncing never looks idle or gone between writes.
 */
const MAX_STEP_MS = 10_000;

/**
 * Presence (spec: "Presence"): explicit updates, the implicit "online" of a
 * syncing client, and the idle/offline timeouts. Only changes others should
 * see take a 'presence' stream position; activity timestamps alone are
 * written without one (last_active_ago is computed when read).
 */
export class Presence {
  private readonly rows = boundedCache<string, PresenceRow>(20000);
  /** Open /sync requests per user on this node. */
  private readonly syncing = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;
  /** An online user with no activity for this long becomes unavailable (spec: "Idle timeout"). */
  private readonly idleAfterMs: number;
  /** A user who stops syncing goes offline after this long. */
  private readonly offlineAfterMs: number;
  /** How often activity timestamps are written when nothing else changes, and the sweep runs. */
  private readonly stepMs: number;

  constructor(private readonly ctx: Context) {
    this.idleAfterMs = ctx.config.presence_idle_timeout_ms;
    this.offlineAfterMs = ctx.config.presence_offline_timeout_ms;
    this.stepMs = Math.max(50, Math.min(MAX_STEP_MS, Math.floor(Math.min(this.idleAfterMs, this.offlineAfterMs) / 3)));
  }

  get enabled(): boolean {
    return this.ctx.config.presence_enabled;
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    this.timer = setInterval(() => void this.sweep(), this.stepMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Another node changed a user's presence: our cached row is stale (all rows, when whose is unknown). */
  onAdvance(userIds: string[] | undefined): void {
    if (userIds === undefined) this.rows.clear();
    for (const u of userIds ?? []) this.rows.delete(u);
  }

  async get(userId: string): Promise<PresenceRow | undefined> {
    const hit = this.rows.get(userId);
    if (hit) return hit;
    const row = await selectPresence(this.ctx.db, userId);
    if (row) this.rows.set(userId, row);
    return row;
  }

  /** PUT /presence/{userId}/status. */
  async setByClient(userId: string, presence: PresenceState, statusMsg: string | undefined): Promise<void> {
    if (!this.enabled) return;
    const now = this.ctx.now();
    const old = await this.get(userId);
    await this.write({
      user_id: userId,
      presence,
      // A PUT states the whole status: no status_msg means none.
      status_msg: statusMsg ?? null,
      last_active_ts: presence === 'online' ? now : (old?.last_active_ts ?? now),
      last_sync_ts: old?.last_sync_ts ?? now,
      stream_pos: 0,
    });
  }

  /**
   * A user of another server as their server says (an `m.presence` EDU). It is kept until that
   * server says otherwise: the timeouts here apply to this server's users only.
   */
  async setRemote(userId: string, presence: PresenceState, statusMsg: string | null, lastActiveAgo: number): Promise<void> {
    if (!this.enabled) return;
    const now = this.ctx.now();
    const lastActive = now - Math.max(0, lastActiveAgo);
    const old = await this.get(userId);
    if (old && old.presence === presence && old.status_msg === statusMsg) {
      await this.touch(old, Math.max(old.last_active_ts, lastActive), now);
      return;
    }
    await this.write({ user_id: userId, presence, status_msg: statusMsg, last_active_ts: lastActive, last_sync_ts: now, stream_pos: 0 });
  }

  /** Pro-active activity (sending an event): keeps the user online and active. */
  async bumpActivity(userId: string): Promise<void> {
    if (!this.enabled) return;
    const now = this.ctx.now();
    const old = await this.get(userId);
    if (!old || old.presence !== 'online') {
      await this.write({
        user_id: userId,
        presence: 'online',
        status_msg: old?.status_msg ?? null,
        last_active_ts: now,
        last_sync_ts: old?.last_sync_ts ?? now,
        stream_pos: 0,
      });
    } else if (now - old.last_active_ts > this.stepMs) {
      await this.touch(old, now, old.last_sync_ts);
    }
  }

  /**
   * A /sync began (`set_presence`); returns the function to call when it
   * ends. While a user has a sync open here, the sweeper leaves them alone.
   */
  async syncStarted(userId: string, setPresence: PresenceState): Promise<() => void> {
    if (!this.enabled) return () => {};
    this.syncing.set(userId, (this.syncing.get(userId) ?? 0) + 1);
    const done = () => {
      const n = (this.syncing.get(userId) ?? 1) - 1;
      if (n <= 0) this.syncing.delete(userId);
      else this.syncing.set(userId, n);
      void this.syncSeen(userId).catch((err) => this.ctx.logger.warn({ err }, 'presence update failed'));
    };
    try {
      const now = this.ctx.now();
      const old = await this.get(userId);
      if (setPresence === 'online') {
        if (!old || old.presence !== 'online') {
          await this.write({
            user_id: userId,
            presence: 'online',
            status_msg: old?.status_msg ?? null,
            last_active_ts: now,
            last_sync_ts: now,
            stream_pos: 0,
          });
        } else if (now - old.last_sync_ts > this.stepMs || now - old.last_active_ts > this.stepMs) {
          // Staying online is no news for others: refresh the timestamps without a stream position.
          await this.touch(old, now, now);
        }
      } else if (setPresence === 'unavailable' && old?.presence !== 'unavailable') {
        await this.write({
          user_id: userId,
          presence: 'unavailable',
          status_msg: old?.status_msg ?? null,
          last_active_ts: old?.last_active_ts ?? now,
          last_sync_ts: now,
          stream_pos: 0,
        });
      } else if (old && now - old.last_sync_ts > this.stepMs) {
        await this.touch(old, old.last_active_ts, now);
      }
    } catch (err) {
      this.ctx.logger.warn({ err }, 'presence update failed');
    }
    return done;
  }

  private async syncSeen(userId: string): Promise<void> {
    const old = await this.get(userId);
    const now = this.ctx.now();
    if (old && now - old.last_sync_ts > this.stepMs) await this.touch(old, old.last_active_ts, now);
  }

  /** The presence event content as others see it now. */
  content(row: PresenceRow | undefined): JsonObject {
    if (!row) return { presence: 'offline' };
    const now = this.ctx.now();
    const out: JsonObject = { presence: row.presence, last_active_ago: Math.max(0, now - row.last_active_ts) };
    if (row.presence === 'online') out.currently_active = now - row.last_active_ts < ACTIVE_WINDOW_MS;
    if (row.status_msg !== null) out.status_msg = row.status_msg;
    return out;
  }

  /** Presence rows of `userIds` changed in (fromPos, toPos]. */
  async changes(userIds: string[], fromPos: number, toPos: number): Promise<PresenceRow[]> {
    if (!this.enabled || fromPos >= toPos || userIds.length === 0) return [];
    return selectPresenceChanges(this.ctx.db, userIds, fromPos, toPos);
  }

  /**
   * With `timeout`, a timeout applied by the lease holder: fenced, so an ex-holder's write fails
   * (CLUSTER.md 5), and only if the row is still `seen` (the sweep's read), else dropped.
   */
  async write(row: PresenceRow, timeout?: { lease: Lease; seen: PresenceRow }): Promise<void> {
    const pos = await this.ctx.db.transaction().execute(async (trx) => {
      if (timeout) {
        await this.ctx.leases.fence(trx, timeout.lease);
        if (!(await lockPresenceIfUnchanged(trx, this.ctx.dialect, timeout.seen))) return null;
      }
      const p = await nextPosition(trx, 'presence');
      await upsertPresence(trx, { ...row, stream_pos: p });
      return p;
    });
    if (pos === null) {
      this.rows.delete(row.user_id);
      return;
    }
    this.rows.set(row.user_id, { ...row, stream_pos: pos });
    this.ctx.bus.publish({ stream: 'presence', pos, userIds: [row.user_id] });
  }

  private async touch(old: PresenceRow, lastActive: number, lastSync: number): Promise<void> {
    await updatePresenceTimes(this.ctx.db, old.user_id, lastActive, lastSync);
    this.rows.set(old.user_id, { ...old, last_active_ts: lastActive, last_sync_ts: lastSync });
  }

  /** The timeouts: offline after the user stopped syncing, unavailable after idling. One node runs it (lease). */
  async sweep(): Promise<void> {
    // A sweep slower than the interval must not overlap the next: both would apply the same timeout.
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      // The lease holder may be another node: it learns who syncs here from last_sync_ts.
      for (const userId of [...this.syncing.keys()]) await this.syncSeen(userId);
      const lease = await this.ctx.leases.acquire('presence_timeouts');
      if (!lease) return;
      const now = this.ctx.now();
      for (const row of await selectNotOffline(this.ctx.db)) {
        if (!this.ctx.leases.stillHeld(lease)) return;
        if (serverNameOf(row.user_id) !== this.ctx.serverName) continue;
        const local = this.syncing.has(row.user_id);
        if (!local && now - row.last_sync_ts > this.offlineAfterMs && now - row.last_active_ts > this.offlineAfterMs) {
          await this.write({ ...row, presence: 'offline' }, { lease, seen: row });
        } else if (row.presence === 'online' && now - row.last_active_ts > this.idleAfterMs) {
          await this.write({ ...row, presence: 'unavailable' }, { lease, seen: row });
        }
      }
    } catch (err) {
      this.ctx.logger.warn({ err }, 'presence sweep failed');
    } finally {
      this.sweeping = false;
    }
  }
}
