import { randomBytes } from 'node:crypto';
import type { Context, Lifecycle } from '../context.js';
import { isValidRoomId } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import { invalidParam, limitExceeded, MatrixError, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { DelayedScheduler } from './scheduler.js';
import {
  countScheduled,
  insertDelayedEvent,
  moveStatus,
  restartTimer,
  selectByTxn,
  selectDelayedEvent,
  selectOfUser,
} from './store.js';
import type { DelayedEventRow, DelayedStatus } from './tables.js';

/**
 * Delayed events (MSC4140): an event a user schedules now and the server
 * sends later as them, unless they cancel it; restarting moves the timer
 * (the heartbeat MatrixRTC keeps call membership alive with). Scheduled
 * events live in the database and one node (a lease) sends them, so they
 * survive restarts. Power levels are checked when the event is sent.
 */

export interface ScheduleInput {
  roomId: string;
  type: string;
  /** null for a message event. */
  stateKey: string | null;
  content: JsonObject;
  delayMs: number;
  /** The request's transaction id, for a retried request (send endpoints). */
  txnId: string | null;
}

export type DelayedAction = 'cancel' | 'restart' | 'send';

/** The unstable prefix of MSC4140 and its feature flag in /versions. */
export const DELAYED_EVENTS_FEATURE = 'org.matrix.msc4140';
/** The query parameters a send or state PUT may carry (looked up on every send). */
const DELAY_PARAM = `${DELAYED_EVENTS_FEATURE}.delay`;
const PARENT_DELAY_PARAM = `${DELAYED_EVENTS_FEATURE}.parent_delay_id`;

const conflict = (msg: string) => new MatrixError(409, 'M_UNKNOWN', msg);

export class DelayedEventsService implements Lifecycle {
  readonly scheduler: DelayedScheduler;

  constructor(private readonly ctx: Context) {
    this.scheduler = new DelayedScheduler(ctx, (row) => this.deliverDue(row));
  }

  get enabled(): boolean {
    return this.ctx.config.delayed_events.enabled;
  }

  get maxDelayMs(): number {
    return this.ctx.config.delayed_events.max_delay_ms;
  }

  async start(): Promise<void> {
    if (this.enabled) this.scheduler.start();
  }

  async stop(): Promise<void> {
    await this.scheduler.stop();
  }

  /** The delay a send or state request asks for in its query, or null for an ordinary request. */
  delayFromQuery(query: Record<string, unknown> | undefined): number | null {
    const raw = query?.[DELAY_PARAM];
    if (raw === undefined) return null;
    if (!this.enabled) throw new MatrixError(400, 'M_UNRECOGNIZED', 'Delayed events are not enabled on this server');
    if (query?.[PARENT_DELAY_PARAM] !== undefined) throw invalidParam('parent_delay_id is not supported');
    const n = typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : typeof raw === 'number' ? raw : NaN;
    if (!Number.isSafeInteger(n) || n <= 0) throw invalidParam(`${DELAYED_EVENTS_FEATURE}.delay must be a positive integer of milliseconds`);
    return n;
  }

  async schedule(requester: Requester, input: ScheduleInput): Promise<{ delay_id: string }> {
    if (!this.enabled) throw new MatrixError(400, 'M_UNRECOGNIZED', 'Delayed events are not enabled on this server');
    if (!isValidRoomId(input.roomId)) throw invalidParam(`${input.roomId} is not a valid room ID`);
    if (!Number.isSafeInteger(input.delayMs) || input.delayMs <= 0) throw invalidParam('delay must be a positive integer of milliseconds');
    if (input.delayMs > this.maxDelayMs) {
      // The errcode and fields matrix-js-sdk's MatrixRTC reads to retry with the allowed delay.
      throw new MatrixError(400, 'M_UNKNOWN', 'The requested delay exceeds the allowed maximum.', {
        'org.matrix.msc4140.errcode': 'M_MAX_DELAY_EXCEEDED',
        'org.matrix.msc4140.max_delay': this.maxDelayMs,
        max_delay: this.maxDelayMs,
      });
    }
    const db = this.ctx.db;
    if (input.txnId !== null) {
      const seen = await selectByTxn(db, requester.userId, requester.deviceId, `${input.stateKey === null ? 'send' : 'state'}:${input.txnId}`);
      if (seen) return { delay_id: seen.delay_id };
    }
    const memberships = await this.ctx.services.rooms.getMemberships(requester.userId);
    if (!memberships.some((m) => m.roomId === input.roomId && m.membership === 'join')) {
      throw new MatrixError(403, 'M_FORBIDDEN', 'You are not joined to this room');
    }
    const { count, nextSend } = await countScheduled(db, requester.userId);
    if (count >= this.ctx.config.delayed_events.max_per_user) {
      throw limitExceeded(Math.max(1000, Math.ceil(((nextSend ?? this.ctx.now()) - this.ctx.now()) / 1000) * 1000));
    }
    const now = this.ctx.now();
    const row: DelayedEventRow = {
      delay_id: randomBytes(16).toString('hex'),
      user_id: requester.userId,
      device_id: requester.deviceId,
      room_id: input.roomId,
      type: input.type,
      state_key: input.stateKey,
      content: JSON.stringify(input.content),
      delay_ms: input.delayMs,
      running_since: now,
      send_ts: now + input.delayMs,
      txn_id: input.txnId === null ? null : `${input.stateKey === null ? 'send' : 'state'}:${input.txnId}`,
      status: 'scheduled',
      event_id: null,
      error: null,
      finalised_ts: null,
    };
    await insertDelayedEvent(db, row);
    this.scheduler.poke(row.send_ts);
    return { delay_id: row.delay_id };
  }

  /**
   * cancel, restart or send. Knowing the delay id is enough (it may be handed
   * to a service that watches the client); an authenticated caller must be
   * its owner. Repeating an action that already happened succeeds.
   */
  async update(delayId: string, action: DelayedAction, requester: Requester | null): Promise<JsonObject> {
    const db = this.ctx.db;
    const row = await selectDelayedEvent(db, delayId);
    if (!row || (requester !== null && requester.userId !== row.user_id)) throw notFound('No delayed event with this id');
    const now = this.ctx.now();
    switch (action) {
      case 'cancel':
        if (row.status === 'cancelled' || row.status === 'error') return {};
        if (await moveStatus(db, delayId, ['scheduled'], 'cancelled', { finalised_ts: now })) return {};
        throw conflict('The delayed event was already sent');
      case 'restart':
        if (await restartTimer(db, delayId, now)) {
          this.scheduler.poke(now + row.delay_ms);
          return {};
        }
        throw conflict('The delayed event is no longer scheduled');
      case 'send':
        if (row.status === 'sent') return {};
        if (row.status !== 'scheduled') throw conflict('The delayed event is no longer scheduled');
        await this.deliver(row, ['scheduled'], true);
        return {};
    }
  }

  async get(requester: Requester, delayId: string): Promise<JsonObject> {
    const row = await selectDelayedEvent(this.ctx.db, delayId);
    if (!row || row.user_id !== requester.userId) throw notFound('No delayed event with this id');
    return describe(row);
  }

  async list(requester: Requester, status: string | undefined): Promise<JsonObject> {
    let statuses: DelayedStatus[];
    if (status === undefined || status === 'scheduled') statuses = ['scheduled', 'sending'];
    else if (status === 'finalised') statuses = ['sent', 'cancelled', 'error'];
    else throw invalidParam('status must be scheduled or finalised');
    const rows = await selectOfUser(this.ctx.db, requester.userId, statuses, 1000);
    return { delayed_events: rows.map(describe) };
  }

  /** The scheduler's delivery of an event whose time came (or one a crash left half sent). */
  private async deliverDue(row: DelayedEventRow): Promise<void> {
    await this.deliver(row, ['scheduled', 'sending'], false);
  }

  /**
   * Sends the event as its owner. The row is claimed first (moved to
   * `sending`) so a concurrent cancel or restart cannot both win; a message
   * is sent with a transaction id of its own, so sending again after a crash
   * gives the same event. `explicit`: a client's send action, whose failure
   * is answered to it and leaves the event scheduled, as the MSC asks.
   */
  private async deliver(row: DelayedEventRow, from: DelayedStatus[], explicit: boolean): Promise<void> {
    const db = this.ctx.db;
    if (!(await moveStatus(db, row.delay_id, from, 'sending'))) {
      if (explicit) throw conflict('The delayed event is no longer scheduled');
      return;
    }
    const as: Requester = { userId: row.user_id, deviceId: row.device_id, isAdmin: false, tokenId: '' };
    const content = JSON.parse(row.content) as JsonObject;
    const rooms = this.ctx.services.rooms;
    try {
      // Events timed to go out together still pass the sender's message budget (MSC4140,
      // "Rate-limiting at the point of sending"); a due event refused here is finalised with the error.
      await this.ctx.rateLimiter.check('message', row.user_id);
      // Sent under the delay id as its transaction: a retry after a crash answers the same event,
      // and the event carries the id in `unsigned` for its sender (MSC4140).
      const { event_id } =
        row.state_key === null
          ? await rooms.sendMessage(as, row.room_id, row.type, row.delay_id, content, 'delayed')
          : await rooms.sendState(as, row.room_id, row.type, row.state_key, content, { txnId: row.delay_id, endpoint: 'delayed' });
      await moveStatus(db, row.delay_id, ['sending'], 'sent', { event_id, finalised_ts: this.ctx.now() });
    } catch (err) {
      if (explicit) {
        await moveStatus(db, row.delay_id, ['sending'], 'scheduled');
        throw err;
      }
      const error = err instanceof MatrixError ? err.toJSON() : { errcode: 'M_UNKNOWN', error: 'The event could not be sent' };
      if (!(err instanceof MatrixError)) this.ctx.logger.warn({ err, delayId: row.delay_id }, 'delayed event failed');
      await moveStatus(db, row.delay_id, ['sending'], 'error', { error: JSON.stringify(error), finalised_ts: this.ctx.now() });
    }
  }
}

function describe(row: DelayedEventRow): JsonObject {
  const out: JsonObject = {
    delay_id: row.delay_id,
    room_id: row.room_id,
    type: row.type,
    delay: row.delay_ms,
    running_since: row.running_since,
    content: JSON.parse(row.content) as JsonObject,
  };
  if (row.state_key !== null) out.state_key = row.state_key;
  if (row.event_id !== null) out.event_id = row.event_id;
  if (row.error !== null) out.error = JSON.parse(row.error) as JsonObject;
  if (row.finalised_ts !== null) out.origin_server_ts = row.finalised_ts;
  return out;
}
