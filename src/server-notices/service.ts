/**
 * Server notices (client-server API, "Server Notices"): an administrator's message to a user
 * arrives in a room the server keeps for that user, tagged `m.server_notice`, sent by the system
 * user that `server_notices.system_mxid_localpart` names.
 *
 * 1. The system user is made on first use (no password: nobody logs in as it).
 * 2. The user's notices room is the room where the system user is joined and the user is
 *    invited or joined; only the system user makes rooms with it. Without one (never had one, or
 *    left it), a new room is made, the user invited (not joined, as the spec asks) and the room
 *    tagged `m.server_notice` in the user's account data.
 * 3. The notice is sent as the system user; a body without a msgtype becomes `m.server_notice`.
 *
 * The invite cannot be rejected (M_CANNOT_LEAVE_SERVER_NOTICE_ROOM); once joined, the user may
 * leave.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import { MatrixError, forbidden, invalidParam, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';

export const SERVER_NOTICE_TAG = 'm.server_notice';

export interface NoticeBody {
  user_id: string;
  content: JsonObject;
  type?: string;
}

export class ServerNotices {
  constructor(private readonly ctx: Context) {}

  /** The system user, or null when server notices are off. */
  get systemUserId(): string | null {
    const localpart = this.ctx.config.server_notices.system_mxid_localpart;
    return localpart === '' ? null : `@${localpart}:${this.ctx.serverName}`;
  }

  /** POST/PUT `send_server_notice` (the admin API Synapse tools use): answers the notice's event id. */
  async send(requester: Requester, body: NoticeBody, txnId?: string): Promise<{ event_id: string }> {
    if (!requester.isAdmin) throw forbidden('You are not a server admin');
    const system = this.systemUserId;
    if (system === null) throw notFound('Server notices are not enabled on this server');
    const target = body.user_id;
    if (!target.endsWith(`:${this.ctx.serverName}`)) throw invalidParam('Server notices go to local users only');
    if (target === system || !(await this.ctx.services.accounts.userExists(target))) throw notFound(`Unknown user ${target}`);
    if (typeof body.content.body !== 'string') throw invalidParam('content.body must be a string');

    const sender: Requester = { userId: system, deviceId: 'SERVER_NOTICES', isAdmin: false, tokenId: '' };
    await this.ensureSystemUser();
    const roomId = (await this.roomOf(target)) ?? (await this.newRoom(sender, target));
    const content = { msgtype: 'm.server_notice', ...body.content };
    return this.ctx.services.rooms.sendMessage(sender, roomId, body.type ?? 'm.room.message', txnId ?? `notice-${randomBytes(9).toString('base64url')}`, content);
  }

  /** Refuses a rejection of the invite to a server notices room (client-server API: must not succeed). */
  async refuseRejecting(userId: string, roomId: string): Promise<void> {
    const system = this.systemUserId;
    if (system === null || userId === system) return;
    const invited = (await this.ctx.services.rooms.getMemberships(userId)).some((m) => m.roomId === roomId && m.membership === 'invite');
    if (invited && (await this.ctx.services.rooms.getJoinedMembers(roomId)).includes(system)) {
      throw new MatrixError(403, 'M_CANNOT_LEAVE_SERVER_NOTICE_ROOM', 'The invite to the server notices room cannot be rejected');
    }
  }

  private async ensureSystemUser(): Promise<void> {
    const localpart = this.ctx.config.server_notices.system_mxid_localpart;
    if (await this.ctx.services.accounts.userExists(this.systemUserId!)) return;
    try {
      await this.ctx.services.accounts.createUser({ localpart, displayName: this.ctx.config.server_notices.room_name });
    } catch (e) {
      // Another node (or request) made it first.
      if (!(await this.ctx.services.accounts.userExists(this.systemUserId!))) throw e;
    }
  }

  /** The room where the system user is joined and `userId` invited or joined. */
  private async roomOf(userId: string): Promise<string | undefined> {
    const system = this.systemUserId!;
    const memberships = await this.ctx.services.rooms.getMembershipsOfUsers([userId, system]);
    const systemJoined = new Set((memberships.get(system) ?? []).filter((m) => m.membership === 'join').map((m) => m.roomId));
    return (memberships.get(userId) ?? []).find((m) => (m.membership === 'invite' || m.membership === 'join') && systemJoined.has(m.roomId))?.roomId;
  }

  private async newRoom(sender: Requester, userId: string): Promise<string> {
    const { room_id: roomId } = await this.ctx.services.rooms.createRoom(sender, {
      preset: 'private_chat',
      name: this.ctx.config.server_notices.room_name,
      invite: [userId],
      // Notices come from the server; the user reads them and does not write back.
      power_level_content_override: { users_default: -10 },
    });
    await this.ctx.services.sync.accountData.update(userId, roomId, 'm.tag', (old) => {
      const tags = old?.tags !== null && typeof old?.tags === 'object' && !Array.isArray(old.tags) ? (old.tags as JsonObject) : {};
      return { tags: { ...tags, [SERVER_NOTICE_TAG]: {} } };
    });
    return roomId;
  }
}
