/**
 * EDUs of an inbound transaction (spec: server-server API, "Typing Notifications", "Receipts",
 * "Device Management", "Send-to-device messaging"): `m.typing` and `m.receipt` about users of
 * the origin server who are joined to the room here, in rooms whose server ACL admits the
 * origin; `m.device_list_update`, `m.signing_key_update` and `m.direct_to_device` from users of
 * the origin server, handed to the e2ee domain, which checks them further; `m.presence` of users
 * of the origin server who share a room with a user here. Anything else (other
 * EDU types, users of other servers, rooms or events unknown here) is ignored, as EDUs carry no
 * answer.
 */
import type { Logger } from 'pino';
import { serverNameOf } from '../../core/ids.js';
import type { JsonObject } from '../../core/types.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import type { ServerAcls } from '../acl.js';

/** How long a remote user shows as typing without a new EDU (the sender's own timeout is not sent). */
const REMOTE_TYPING_MS = 30_000;

export interface EduSinks {
  setTyping(roomId: string, userId: string, typing: boolean, timeoutMs: number): Promise<unknown>;
  setReceipt(r: { roomId: string; userId: string; eventId: string; eventPos: number; threadId: string | null }): Promise<void>;
  deviceListUpdate(origin: string, content: JsonObject): Promise<void>;
  signingKeyUpdate(origin: string, content: JsonObject): Promise<void>;
  directToDevice(origin: string, content: JsonObject): Promise<void>;
  /** Kept only for users who share a room with a user here. */
  presence(userId: string, presence: 'online' | 'unavailable' | 'offline', statusMsg: string | null, lastActiveAgo: number): Promise<void>;
}

const PRESENCE_STATES = new Set(['online', 'unavailable', 'offline']);

const E2EE_EDUS: Record<string, keyof EduSinks> = {
  'm.device_list_update': 'deviceListUpdate',
  'm.signing_key_update': 'signingKeyUpdate',
  'm.direct_to_device': 'directToDevice',
};

export async function handleEdus(deps: { core: RoomsCore; acls: ServerAcls; sinks: EduSinks; logger: Logger }, origin: string, edus: unknown[]): Promise<void> {
  const joinedHere = async (roomId: unknown, userId: unknown): Promise<boolean> => {
    if (typeof roomId !== 'string' || typeof userId !== 'string' || serverNameOf(userId) !== origin) return false;
    const head = await deps.core.heads.get(roomId);
    return head?.members.get(userId)?.membership === 'join' && (await deps.acls.allows(origin, roomId));
  };
  for (const raw of edus) {
    const edu = raw as { edu_type?: unknown; content?: unknown };
    if (typeof edu !== 'object' || edu === null || typeof edu.content !== 'object' || edu.content === null) continue;
    const content = edu.content as JsonObject;
    const e2ee = typeof edu.edu_type === 'string' && Object.hasOwn(E2EE_EDUS, edu.edu_type) ? E2EE_EDUS[edu.edu_type] : undefined;
    if (e2ee !== undefined) {
      // One bad EDU must not fail the transaction (the origin would send it all again).
      await (deps.sinks[e2ee] as (origin: string, content: JsonObject) => Promise<void>)(origin, content).catch((e: unknown) =>
        deps.logger.warn({ err: e, origin, eduType: edu.edu_type }, 'EDU not applied'),
      );
    } else if (edu.edu_type === 'm.presence') {
      for (const p of Array.isArray(content.push) ? content.push : []) {
        const u = p as { user_id?: unknown; presence?: unknown; status_msg?: unknown; last_active_ago?: unknown };
        if (typeof u !== 'object' || u === null || typeof u.user_id !== 'string' || serverNameOf(u.user_id) !== origin) continue;
        if (typeof u.presence !== 'string' || !PRESENCE_STATES.has(u.presence)) continue;
        const ago = typeof u.last_active_ago === 'number' && Number.isFinite(u.last_active_ago) ? u.last_active_ago : 0;
        await deps.sinks
          .presence(u.user_id, u.presence as 'online', typeof u.status_msg === 'string' ? u.status_msg : null, ago)
          .catch((e: unknown) => deps.logger.warn({ err: e, origin }, 'presence EDU not applied'));
      }
    } else if (edu.edu_type === 'm.typing') {
      if (typeof content.typing !== 'boolean' || !(await joinedHere(content.room_id, content.user_id))) continue;
      await deps.sinks.setTyping(content.room_id as string, content.user_id as string, content.typing, REMOTE_TYPING_MS);
    } else if (edu.edu_type === 'm.receipt') {
      for (const [roomId, byType] of Object.entries(content)) {
        const read = (byType as JsonObject | null)?.['m.read'];
        if (typeof read !== 'object' || read === null || Array.isArray(read)) continue;
        for (const [userId, r] of Object.entries(read)) {
          const receipt = r as { event_ids?: unknown; data?: { thread_id?: unknown } };
          const eventId = Array.isArray(receipt?.event_ids) ? receipt.event_ids[0] : undefined;
          if (typeof eventId !== 'string' || !(await joinedHere(roomId, userId))) continue;
          const ev = await deps.core.events.get(eventId);
          if (!ev || ev.roomId !== roomId || ev.streamPos === null) continue;
          const threadId = typeof receipt.data?.thread_id === 'string' ? receipt.data.thread_id : null;
          await deps.sinks.setReceipt({ roomId, userId, eventId, eventPos: ev.streamPos, threadId });
        }
      }
    }
  }
}
