import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import { lockForUpdate } from '../db/row-lock.js';
import { nextPosition } from '../db/stream-positions.js';
import { selectAccountData, selectAccountDataChanges, upsertAccountData } from './account-data-store.js';

export interface AccountDataChange {
  /** null for global account data. */
  roomId: string | null;
  type: string;
  content: JsonObject;
}

/**
 * Global and per-room account data (spec: "Client Config"), tags (the
 * `m.tag` room account data) and the fully read marker (`m.fully_read`).
 * Every change takes a position on the 'account_data' stream.
 */
export class AccountData {
  /** m.ignored_user_list per user, dropped on any account data change of that user (any node, via the bus). */
  private readonly ignored = boundedCache<string, Set<string>>(10000);
  /** Whether m.invite_permission_config blocks every invite, per user; dropped like `ignored`. */
  private readonly blocking = boundedCache<string, boolean>(10000);

  constructor(private readonly ctx: Context) {}

  /** `undefined`: whose data changed is unknown (another node's missed announcement). */
  onAdvance(userIds: string[] | undefined): void {
    if (userIds === undefined) {
      this.ignored.clear();
      this.blocking.clear();
    }
    for (const u of userIds ?? []) {
      this.ignored.delete(u);
      this.blocking.delete(u);
    }
  }

  async get(userId: string, roomId: string | null, type: string): Promise<JsonObject | null> {
    const json = await selectAccountData(this.ctx.db, userId, roomId ?? '', type);
    if (json !== null) return JSON.parse(json) as JsonObject;
    return roomId === null && type === 'm.push_rules' ? this.pushRules(userId) : null;
  }

  /**
   * `m.push_rules` as push computes it. Push stores the content here after
   * every edit; until a user edits a rule only push knows the defaults.
   */
  async pushRules(userId: string): Promise<JsonObject> {
    return { global: (await this.ctx.services.push.getRuleset(userId)) as unknown as JsonObject };
  }

  async set(userId: string, roomId: string | null, type: string, content: JsonObject): Promise<number> {
    return this.update(userId, roomId, type, () => content);
  }

  /**
   * Read-modify-write in one transaction (tags); `fn` returning null leaves
   * the data unchanged. Concurrent updates of the same (user, room, type)
   * wait for each other (lockForUpdate), so each `fn` sees the previous
   * writer's result and none is lost.
   */
  async update(
    userId: string,
    roomId: string | null,
    type: string,
    fn: (old: JsonObject | null) => JsonObject | null,
  ): Promise<number> {
    const pos = await this.ctx.db.transaction().execute(async (trx) => {
      await lockForUpdate(trx, this.ctx.dialect, 'account_data', JSON.stringify([userId, roomId ?? '', type]));
      const old = await selectAccountData(trx, userId, roomId ?? '', type);
      const next = fn(old === null ? null : (JSON.parse(old) as JsonObject));
      if (next === null) return 0;
      const p = await nextPosition(trx, 'account_data');
      await upsertAccountData(trx, { user_id: userId, room_id: roomId ?? '', type, content: JSON.stringify(next), stream_pos: p });
      return p;
    });
    if (pos > 0) {
      this.ignored.delete(userId);
      this.blocking.delete(userId);
      // Only the owner cares: no roomId, which would wake every member of the room.
      this.ctx.bus.publish({ stream: 'account_data', pos, userIds: [userId] });
    }
    return pos;
  }

  /** The user's account data changed in (fromPos, toPos]; all of it when fromPos is 0. */
  async changes(userId: string, fromPos: number, toPos: number): Promise<AccountDataChange[]> {
    if (fromPos >= toPos) return [];
    const rows = await selectAccountDataChanges(this.ctx.db, userId, fromPos, toPos);
    return rows.map((r) => ({ roomId: r.room_id === '' ? null : r.room_id, type: r.type, content: JSON.parse(r.content) as JsonObject }));
  }

  /** Users this user ignores (spec: "Ignoring Users"). */
  async ignoredUsers(userId: string): Promise<Set<string>> {
    const hit = this.ignored.get(userId);
    if (hit) return hit;
    const content = await this.get(userId, null, 'm.ignored_user_list');
    const list = content?.ignored_users;
    const set = new Set<string>(list && typeof list === 'object' && !Array.isArray(list) ? Object.keys(list) : []);
    this.ignored.set(userId, set);
    return set;
  }

  /**
   * Whether the user blocks every invite (spec: "Invite permission", `m.invite_permission_config`
   * with `default_action: block`); any other value lets invites through.
   */
  async blocksInvites(userId: string): Promise<boolean> {
    const hit = this.blocking.get(userId);
    if (hit !== undefined) return hit;
    const content = await this.get(userId, null, 'm.invite_permission_config');
    const blocks = content?.default_action === 'block';
    this.blocking.set(userId, blocks);
    return blocks;
  }
}
