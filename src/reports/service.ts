/**
 * Reports of events, rooms and users (report_content.yaml), kept for the
 * server's admins. What may be reported follows the spec: an event only by a
 * member of its room who can see it, a room or a user by anyone, each
 * answered 404 M_NOT_FOUND when this server does not know it.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from '../context.js';
import { isValidUserId, serverNameOf } from '../core/ids.js';
import { forbidden, invalidParam, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { insertReport, selectReports } from './reports-table.js';
import type { ReportRow } from './tables.js';

const MAX_REASON = 10_000;

export class ReportsService {
  constructor(private readonly ctx: Context) {}

  async reportEvent(requester: Requester, roomId: string, eventId: string, reason: string | undefined): Promise<void> {
    const notThere = () => notFound('The event was not found or you are not joined to its room');
    const joined = await this.ctx.services.rooms.joinedRooms(requester.userId);
    if (!joined.includes(roomId)) throw notThere();
    const event = (await this.ctx.services.rooms.getEvents([eventId], { userId: requester.userId, deviceId: requester.deviceId })).get(eventId);
    if (!event || event.room_id !== roomId) throw notThere();
    await this.store(requester, { kind: 'event', room_id: roomId, event_id: eventId, target_user_id: event.sender, reason });
  }

  async reportRoom(requester: Requester, roomId: string, reason: string): Promise<void> {
    if (!(await this.ctx.services.rooms.roomExists(roomId))) throw notFound('The room was not found');
    await this.store(requester, { kind: 'room', room_id: roomId, event_id: null, target_user_id: null, reason });
  }

  async reportUser(requester: Requester, userId: string, reason: string): Promise<void> {
    if (!isValidUserId(userId)) throw invalidParam('Not a user ID');
    // Users of other servers cannot be looked up here; their reports are kept all the same.
    if (serverNameOf(userId) === this.ctx.serverName && !(await this.ctx.services.accounts.userExists(userId))) {
      throw notFound('The user was not found');
    }
    await this.store(requester, { kind: 'user', room_id: null, event_id: null, target_user_id: userId, reason });
  }

  /** The reports, newest first, for server admins; `from` is the offset a previous page returned. */
  async list(requester: Requester, q: { from?: string; limit?: string }): Promise<{ reports: ReportRow[]; next_token?: string }> {
    if (!requester.isAdmin) throw forbidden('You are not a server admin');
    const offset = q.from === undefined ? 0 : /^\d{1,9}$/.test(q.from) ? Number(q.from) : NaN;
    const limit = q.limit === undefined ? 100 : /^\d{1,4}$/.test(q.limit) && Number(q.limit) > 0 ? Math.min(Number(q.limit), 1000) : NaN;
    if (Number.isNaN(offset) || Number.isNaN(limit)) throw invalidParam('from and limit must be non-negative integers');
    const rows = await selectReports(this.ctx.db, { offset, limit: limit + 1 });
    const out: { reports: ReportRow[]; next_token?: string } = { reports: rows.slice(0, limit) };
    if (rows.length > limit) out.next_token = String(offset + limit);
    return out;
  }

  private async store(requester: Requester, r: Pick<ReportRow, 'kind' | 'room_id' | 'event_id' | 'target_user_id'> & { reason: string | undefined }): Promise<void> {
    if (r.reason !== undefined && r.reason.length > MAX_REASON) throw invalidParam(`The reason is longer than ${MAX_REASON} characters`);
    await insertReport(this.ctx.db, {
      report_id: randomBytes(12).toString('base64url'),
      kind: r.kind,
      reporter: requester.userId,
      room_id: r.room_id,
      event_id: r.event_id,
      target_user_id: r.target_user_id,
      reason: r.reason ?? null,
      received_ts: this.ctx.now(),
    });
    this.ctx.logger.info({ kind: r.kind, reporter: requester.userId, roomId: r.room_id, eventId: r.event_id, userId: r.target_user_id }, 'content reported');
  }
}
