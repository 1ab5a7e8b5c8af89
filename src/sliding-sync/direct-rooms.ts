import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';

/**
 * The rooms each user's `m.direct` account data names (the `is_dm` filter
 * and flag), kept per user until an account-data change of that user is
 * announced on the bus (from any node).
 */
export class DirectRooms {
  private readonly cache = boundedCache<string, { rooms?: Set<string>; gen: number }>(10000);
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly ctx: Context) {}

  start(): void {
    this.unsubscribe ??= this.ctx.bus.onAdvance((msg) => {
      if (msg.stream !== 'account_data') return;
      for (const u of msg.userIds ?? []) {
        const e = this.entry(u);
        e.gen++;
        e.rooms = undefined;
      }
    });
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  private entry(userId: string): { rooms?: Set<string>; gen: number } {
    let e = this.cache.get(userId);
    if (!e) this.cache.set(userId, (e = { gen: 0 }));
    return e;
  }

  async of(userId: string): Promise<Set<string>> {
    const e = this.entry(userId);
    if (e.rooms) return e.rooms;
    const gen = e.gen;
    const content = await this.ctx.services.sync.accountData.get(userId, null, 'm.direct');
    const out = new Set<string>();
    for (const ids of Object.values(content ?? {})) if (Array.isArray(ids)) for (const id of ids) if (typeof id === 'string') out.add(id);
    // A change announced while reading makes this answer stale: it is used once, not kept.
    if (e.gen === gen) e.rooms = out;
    return out;
  }
}
