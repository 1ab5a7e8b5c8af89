import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import { lockForUpdate } from '../db/row-lock.js';
import { nextPositions, readStreamPositions } from '../db/stream-positions.js';
import { MatrixError, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { selectChanges, selectLatestPos, selectSubscribers, selectSubscription, upsertSubscription } from './store.js';
import type { ThreadSubscriptionRow } from './tables.js';

/**
 * Thread subscriptions (MSC4306): a user subscribes to a thread by hand, or their client does
 * automatically when an event in the thread mentions them. Manual beats automatic; an
 * automatic subscription caused by an event the user had seen when they last unsubscribed is
 * refused (409), so a client catching up does not undo the user's choice. Changes are ordered
 * by a counter so sliding sync (MSC4308) sends only what changed since its last response; each
 * change is announced on the bus after commit, to the user alone, so a waiting sliding sync with
 * the extension on (on any node) answers at once.
 */

/** The unstable prefix of MSC4306's endpoints. */
export const THREAD_SUBSCRIPTIONS_FEATURE = 'io.element.msc4306';

/** A `from` token of MSC4308's changes endpoint: changes strictly between `after` and `before`. */
export function changesToken(before: number, after: number): string {
  return `tsub_${before}_${after}`;
}

export interface SubscriptionChanges {
  subscribed: Record<string, Record<string, { automatic: boolean; bump_stamp: number }>>;
  unsubscribed: Record<string, Record<string, { bump_stamp: number }>>;
  /** Position of the oldest change given, when older ones were left out (more than the limit). */
  olderThan: number | null;
}

export class ThreadSubscriptions {
  constructor(private readonly ctx: Pick<Context, 'db' | 'dialect' | 'services' | 'bus'>) {}

  /** PUT .../thread/{root}/subscription; `automatic` names the event that caused an automatic subscription. */
  async subscribe(requester: Requester, roomId: string, root: string, automatic: string | undefined): Promise<JsonObject> {
    await this.visibleEvent(requester, roomId, root);
    let causePos: number | null = null;
    if (automatic !== undefined) {
      const cause = automatic === root ? null : await this.visibleEvent(requester, roomId, automatic);
      const rel = cause?.content['m.relates_to'] as { rel_type?: unknown; event_id?: unknown } | undefined;
      if (cause !== null && (rel?.rel_type !== 'm.thread' || rel.event_id !== root)) {
        throw new MatrixError(400, 'IO.ELEMENT.MSC4306.M_NOT_IN_THREAD', 'The event is not part of this thread');
      }
      causePos = await this.ctx.services.rooms.getEventStreamPos(automatic);
    }
    await this.write(requester.userId, roomId, root, (old) => {
      if (automatic === undefined) return { subscribed: 1, automatic: 0, unsubscribed_after: null };
      if (old?.subscribed === 1) return null;
      if (old?.unsubscribed_after != null && causePos !== null && causePos <= old.unsubscribed_after) {
        throw new MatrixError(409, 'IO.ELEMENT.MSC4306.M_CONFLICTING_UNSUBSCRIPTION', 'The user unsubscribed from this thread after that event');
      }
      return { subscribed: 1, automatic: 1, unsubscribed_after: old?.unsubscribed_after ?? null };
    });
    return {};
  }

  /** DELETE .../thread/{root}/subscription: idempotent. */
  async unsubscribe(requester: Requester, roomId: string, root: string): Promise<JsonObject> {
    await this.visibleEvent(requester, roomId, root);
    const seen = (await readStreamPositions(this.ctx.db)).events;
    await this.write(requester.userId, roomId, root, (old) => (old?.subscribed === 1 ? { subscribed: 0, automatic: 0, unsubscribed_after: seen } : null));
    return {};
  }

  /** GET .../thread/{root}/subscription: 404 when not subscribed. */
  async get(requester: Requester, roomId: string, root: string): Promise<JsonObject> {
    await this.visibleEvent(requester, roomId, root);
    const row = await selectSubscription(this.ctx.db, requester.userId, roomId, root);
    if (!row || row.subscribed !== 1) throw notFound('Not subscribed to this thread');
    return { automatic: row.automatic === 1 };
  }

  /** Who is subscribed to the thread: push evaluates MSC4306's rules with it. */
  async subscribersOf(roomId: string, root: string): Promise<Set<string>> {
    return new Set(await selectSubscribers(this.ctx.db, roomId, root));
  }

  /** The user's latest change (the bound a sync response covers). */
  latestPos(userId: string): Promise<number> {
    return selectLatestPos(this.ctx.db, userId);
  }

  /** Changes in (after, upTo], newest first; at most `limit`. */
  async changes(userId: string, after: number, upTo: number, limit: number): Promise<SubscriptionChanges> {
    const rows = await selectChanges(this.ctx.db, userId, after, upTo + 1, limit + 1);
    const out: SubscriptionChanges = { subscribed: {}, unsubscribed: {}, olderThan: null };
    for (const r of rows.slice(0, limit)) {
      if (r.subscribed === 1) (out.subscribed[r.room_id] ??= {})[r.thread_root] = { automatic: r.automatic === 1, bump_stamp: r.stream_pos };
      else (out.unsubscribed[r.room_id] ??= {})[r.thread_root] = { bump_stamp: r.stream_pos };
    }
    if (rows.length > limit) out.olderThan = rows[limit - 1]!.stream_pos;
    return out;
  }

  /** The event as the user may see it (404 otherwise: the thread "does not exist" for them). */
  private async visibleEvent(requester: Requester, roomId: string, eventId: string) {
    return this.ctx.services.rooms.event(requester, roomId, eventId) as Promise<{ content: JsonObject }>;
  }

  /** One change, serialised per subscription; `next` null leaves it as it is. */
  private async write(
    userId: string,
    roomId: string,
    root: string,
    next: (old: ThreadSubscriptionRow | undefined) => Pick<ThreadSubscriptionRow, 'subscribed' | 'automatic' | 'unsubscribed_after'> | null,
  ): Promise<void> {
    const pos = await this.ctx.db.transaction().execute(async (trx) => {
      await lockForUpdate(trx, this.ctx.dialect, 'thread_subscriptions', JSON.stringify([userId, roomId, root]));
      const change = next(await selectSubscription(trx, userId, roomId, root));
      if (change === null) return null;
      const pos = await nextPositions(trx, 'thread_subscriptions');
      await upsertSubscription(trx, { user_id: userId, room_id: roomId, thread_root: root, ...change, stream_pos: pos });
      return pos;
    });
    if (pos !== null) this.ctx.bus.publish({ stream: 'thread_subscriptions', pos, userIds: [userId] });
  }
}
