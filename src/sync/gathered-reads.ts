/**
 * Per-user reads of /sync gathered across the requests that ask in the same
 * turn of the event loop: one event wakes every long-poll of its room at
 * once, and each woken sync asks for its user's memberships, unread counts
 * and key counts. Asks made before the turn ends go out as one read (through
 * the read gate), and each asker gets its own part of the answer.
 */
import type { Context } from '../context.js';
import type { RoomMembership } from '../rooms/service.js';
import type { ReadGate } from './read-gate.js';
import type { UnreadCounts } from './sync-run.js';

/** Asks gathered until the end of the current turn (setImmediate), then answered by one `readMany`. */
export class Gathered<A, R> {
  private queued: { asks: A[]; answers: Promise<R[]> } | null = null;

  /** `readMany` answers the asks in their order. */
  constructor(private readonly readMany: (asks: A[]) => Promise<R[]>) {}

  async get(ask: A): Promise<R> {
    if (!this.queued) {
      const asks: A[] = [];
      const answers = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.queued = null;
        return this.readMany(asks);
      });
      this.queued = { asks, answers };
    }
    const i = this.queued.asks.push(ask) - 1;
    return (await this.queued.answers)[i]!;
  }
}

export interface Device {
  userId: string;
  deviceId: string;
}

/** The gathered per-user reads of the sync responder. */
export class GatheredReads {
  readonly memberships: Gathered<string, RoomMembership[]>;
  readonly unread: Gathered<{ userId: string; roomIds: string[]; threads?: boolean }, UnreadCounts>;
  readonly oneTimeKeyCounts: Gathered<Device, Record<string, number>>;
  readonly fallbackKeyTypes: Gathered<Device, string[]>;

  constructor(ctx: Context, gate: ReadGate) {
    const s = ctx.services;
    this.memberships = new Gathered(async (userIds) => {
      const byUser = await gate.run(() => s.rooms.getMembershipsOfUsers(userIds));
      return userIds.map((u) => byUser.get(u) ?? []);
    });
    this.unread = new Gathered(async (asks) => {
      // Per-thread and per-room counts of the same room differ: asked apart.
      const [plain, split] = await Promise.all(
        [false, true].map((threads) => {
          const part = asks.filter((a) => (a.threads === true) === threads);
          return part.length === 0 ? new Map() : gate.run(() => s.push.getUnreadCountsForUsers(part));
        }),
      );
      return asks.map((a) => {
        const all = (a.threads === true ? split : plain)!.get(a.userId);
        return new Map(a.roomIds.map((r) => [r, all?.get(r) ?? { notification_count: 0, highlight_count: 0 }]));
      });
    });
    this.oneTimeKeyCounts = new Gathered(async (devices) => {
      const byDevice = await gate.run(() => s.e2ee.getOneTimeKeyCountsOfDevices(devices));
      return devices.map((d) => byDevice.get(s.e2ee.deviceKey(d.userId, d.deviceId)) ?? { signed_curve25519: 0 });
    });
    this.fallbackKeyTypes = new Gathered(async (devices) => {
      const byDevice = await gate.run(() => s.e2ee.getUnusedFallbackKeyTypesOfDevices(devices));
      return devices.map((d) => byDevice.get(s.e2ee.deviceKey(d.userId, d.deviceId)) ?? []);
    });
  }
}
