import type { Readable } from 'node:stream';
import type { Context } from '../context.js';
import { isValidRoomId } from '../core/ids.js';
import { ANNOUNCED_STREAMS, STREAMS, type AnnouncedStream, type StreamPositions } from '../db/stream-positions.js';
import type { ClientEvent, JsonObject } from '../core/types.js';
import { forbidden, invalidParam, MatrixError, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { AccountData } from './account-data.js';
import type { SyncFilter } from './filter-rules.js';
import { Filters } from './filters.js';
import { Notifier } from './notifier.js';
import { Presence, type PresenceState } from './presence.js';
import { Receipts, type ReceiptType } from './receipts.js';
import { SyncResponder } from './sync-response.js';
import { syncStream } from './sync-stream.js';
import { parseSyncToken } from './token.js';
import { TypingTracker } from './typing.js';

export interface SyncQuery {
  since?: string;
  filter?: string;
  timeout?: number;
  full_state?: boolean;
  set_presence?: PresenceState;
  use_state_after?: boolean;
}

/** Longest long-poll honoured; clients ask for 30 s. */
const MAX_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_TYPING_MS = 30_000;
const MAX_TYPING_MS = 120_000;
/** Account data types the server manages (spec: "Client Config", server behaviour). */
const SERVER_MANAGED_ACCOUNT_DATA = new Set(['m.fully_read', 'm.push_rules']);

/**
 * /sync, filters, the notifier (long-poll wake-ups), typing, receipts, read
 * markers, account data, tags and presence.
 */
export class SyncService {
  readonly filters: Filters;
  readonly typing: TypingTracker;
  readonly receipts: Receipts;
  readonly accountData: AccountData;
  readonly presence: Presence;
  readonly notifier: Notifier;
  private readonly responder: SyncResponder;
  private unsubscribe: (() => void) | null = null;
  /**
   * The highest position of each stream announced on the bus: committed,
   * since writers publish after commit. A woken long-poll rebuilds from
   * these instead of reading the heads again.
   */
  private readonly announced = Object.fromEntries(ANNOUNCED_STREAMS.map((s) => [s, 0])) as Record<AnnouncedStream, number>;

  constructor(private readonly ctx: Context) {
    this.filters = new Filters(ctx);
    this.typing = new TypingTracker(ctx);
    this.receipts = new Receipts(ctx);
    this.accountData = new AccountData(ctx);
    this.presence = new Presence(ctx);
    this.responder = new SyncResponder(ctx, {
      typing: this.typing,
      receipts: this.receipts,
      accountData: this.accountData,
      presence: this.presence,
    });
    this.notifier = new Notifier(
      ctx.bus,
      async (msg) => {
        // A presence change concerns everyone who shares a room with the user.
        const out = new Set<string>();
        for (const u of msg.userIds ?? []) {
          out.add(u);
          for (const v of await ctx.services.rooms.getUsersSharingRooms(u)) out.add(v);
        }
        return [...out];
      },
      (err) => ctx.logger.warn({ err }, 'notifier lookup failed'),
    );
  }

  async start(): Promise<void> {
    // Subscribed before the notifier, so a woken waiter always finds its position here.
    this.unsubscribe = this.ctx.bus.onAdvance((msg) => {
      if (msg.pos > this.announced[msg.stream]) this.announced[msg.stream] = msg.pos;
      if (msg.stream === 'account_data') this.accountData.onAdvance(msg.userIds);
      else if (msg.stream === 'presence') this.presence.onAdvance(msg.userIds);
      else if (msg.stream === 'typing') this.typing.onAdvance(msg);
    });
    this.ctx.bus.onMissed('account_data', () => this.accountData.onAdvance(undefined));
    this.ctx.bus.onMissed('presence', () => this.presence.onAdvance(undefined));
    await this.typing.start();
    this.notifier.start();
    this.presence.start();
  }

  /**
   * Answers every waiting long-poll at once. The HTTP server waits for
   * in-flight requests when it closes; call this before closing it so that
   * shutdown does not wait out 30 s long-polls.
   */
  beforeClose(): void {
    this.notifier.release();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.notifier.stop();
    this.typing.stop();
    this.presence.stop();
  }

  // ---- cross-domain API ----

  /** Account data content, or null. `roomId` null for global account data. */
  async getAccountData(userId: string, roomId: string | null, type: string): Promise<JsonObject | null> {
    return this.accountData.get(userId, roomId, type);
  }

  /**
   * Sets account data, server-managed types included (push stores
   * `m.push_rules` here so that /sync carries them). Wakes the user's syncs.
   */
  async setAccountData(userId: string, roomId: string | null, type: string, content: JsonObject): Promise<void> {
    await this.accountData.set(userId, roomId, type, content);
  }

  /** The user did something pro-active (sent an event): keeps their presence online. */
  async bumpPresenceActivity(userId: string): Promise<void> {
    await this.presence.bumpActivity(userId);
  }

  // ---- GET /sync ----

  /**
   * The answer as an object, or, for an initial sync of many rooms, as JSON
   * text written while it is made (sync-stream.ts).
   */
  async sync(requester: Requester, q: SyncQuery, onClose: (fn: () => void) => void): Promise<JsonObject | Readable> {
    const { userId, deviceId } = requester;
    const since = q.since ? parseSyncToken(q.since) : null;
    const filter = await this.filters.resolve(userId, q.filter);
    const timeout = q.full_state ? 0 : Math.min(Math.max(q.timeout ?? 0, 0), MAX_TIMEOUT_MS);
    const deadline = Date.now() + timeout;
    const syncDone = await this.presence.syncStarted(userId, q.set_presence ?? 'online');
    // Registered before the first read of the stream heads, so no advance can slip between.
    const waiter = this.notifier.register(userId);
    onClose(() => waiter.cancel());
    // The client has everything before its token: to-device messages up to it were delivered.
    const ack =
      since && since.to_device > 0
        ? this.ctx.services.e2ee.ackToDevice(userId, deviceId, since.to_device).catch((err) =>
            this.ctx.logger.warn({ err }, 'to-device acknowledgement failed'),
          )
        : Promise.resolve();
    try {
      const params = {
        userId,
        deviceId,
        since,
        filter,
        fullState: q.full_state === true,
        useStateAfter: q.use_state_after === true,
      };
      let known: StreamPositions | undefined;
      let eventRooms: string[] = [];
      for (;;) {
        const r = await this.responder.build(params, known, eventRooms, { stream: true });
        if (r.joined) return syncStream(r.body, r.joined);
        if (!r.empty || since === null) return r.body;
        const remaining = deadline - Date.now();
        if (remaining <= 0) return r.body;
        waiter.arm(r.rooms, r.heads);
        if (!(await waiter.wait(remaining))) return r.body;
        known = maxPositions(r.heads, this.announced);
        eventRooms = waiter.takeEventRooms();
      }
    } finally {
      waiter.close();
      syncDone();
      await ack;
    }
  }

  // ---- filters ----

  async createFilter(requester: Requester, userId: string, filter: SyncFilter): Promise<string> {
    if (userId !== requester.userId) throw forbidden('Cannot create filters for other users');
    return this.filters.create(userId, filter);
  }

  async getFilter(requester: Requester, userId: string, filterId: string): Promise<SyncFilter> {
    if (userId !== requester.userId) throw forbidden('Cannot get filters of other users');
    return this.filters.get(userId, filterId);
  }

  // ---- typing ----

  async setTyping(requester: Requester, roomId: string, userId: string, typing: boolean, timeout: number | undefined): Promise<void> {
    if (userId !== requester.userId) throw forbidden('Cannot set typing for other users');
    await this.assertJoined(userId, roomId);
    const ms = Math.min(Math.max(timeout ?? DEFAULT_TYPING_MS, 0), MAX_TYPING_MS);
    await this.typing.set(roomId, userId, typing, ms);
  }

  // ---- receipts and read markers ----

  async postReceipt(requester: Requester, roomId: string, receiptType: string, eventId: string, body: JsonObject): Promise<void> {
    if (receiptType !== 'm.read' && receiptType !== 'm.read.private' && receiptType !== 'm.fully_read') {
      throw invalidParam('Receipt type must be m.read, m.read.private or m.fully_read');
    }
    const threadId = body.thread_id;
    if (threadId !== undefined) {
      if (typeof threadId !== 'string' || threadId === '') throw invalidParam('thread_id field must be a non-empty string');
      if (receiptType === 'm.fully_read') throw invalidParam('thread_id is not allowed for m.fully_read');
      if (threadId !== 'main' && !threadId.startsWith('$')) throw invalidParam('thread_id must be "main" or an event id');
    }
    const userId = requester.userId;
    await this.assertJoined(userId, roomId);
    const eventPos = await this.eventInRoom(requester, roomId, eventId, threadId as string | undefined);
    if (receiptType === 'm.fully_read') await this.setFullyRead(userId, roomId, eventId, eventPos);
    else await this.setReceipt(userId, roomId, receiptType, eventId, eventPos, (threadId as string | undefined) ?? null);
  }

  async setReadMarkers(requester: Requester, roomId: string, body: Record<string, string | undefined>): Promise<void> {
    const userId = requester.userId;
    await this.assertJoined(userId, roomId);
    const fullyRead = body['m.fully_read'];
    const read = body['m.read'];
    const readPrivate = body['m.read.private'];
    const [fullyReadPos, readPos, privatePos] = await Promise.all(
      [fullyRead, read, readPrivate].map((id) => (id === undefined ? Promise.resolve(0) : this.eventInRoom(requester, roomId, id))),
    );
    if (fullyRead !== undefined) await this.setFullyRead(userId, roomId, fullyRead, fullyReadPos);
    if (read !== undefined) await this.setReceipt(userId, roomId, 'm.read', read, readPos, null);
    if (readPrivate !== undefined) await this.setReceipt(userId, roomId, 'm.read.private', readPrivate, privatePos, null);
  }

  private async setReceipt(
    userId: string,
    roomId: string,
    type: ReceiptType,
    eventId: string,
    eventPos: number,
    threadId: string | null,
  ): Promise<void> {
    // Counts are cleared before the receipt is published, so the sync that the
    // receipt wakes already carries the new counts (onReadUpTo only moves forward).
    // A threaded receipt clears its thread only ('main': events in no thread).
    await this.ctx.services.push.onReadUpTo(userId, roomId, eventPos, threadId);
    await this.receipts.set({ roomId, userId, type, threadId, eventId, eventPos });
  }

  /** The fully read marker is room account data that only moves forward (spec: "Fully read markers"). */
  private async setFullyRead(userId: string, roomId: string, eventId: string, eventPos: number): Promise<void> {
    const markerOf = (content: JsonObject | null): string | null => (typeof content?.event_id === 'string' ? content.event_id : null);
    // The old marker's position comes from rooms, outside the write's
    // transaction; the write then only goes ahead if the marker is still the
    // one compared against, else a concurrent writer moved it: compare again.
    for (;;) {
      const oldId = markerOf(await this.accountData.get(userId, roomId, 'm.fully_read'));
      if (oldId === eventId) return;
      if (oldId !== null) {
        const oldPos = await this.ctx.services.rooms.getEventStreamPos(oldId);
        if (oldPos !== null && oldPos > eventPos) return;
      }
      let moved = false;
      await this.accountData.update(userId, roomId, 'm.fully_read', (current) => {
        if (markerOf(current) !== oldId) {
          moved = true;
          return null;
        }
        return { event_id: eventId };
      });
      if (!moved) return;
    }
  }

  /** The event must exist in the room; returns its stream position. */
  private async eventInRoom(requester: Requester, roomId: string, eventId: string, threadId?: string): Promise<number> {
    const rooms = this.ctx.services.rooms;
    const [events, pos] = await Promise.all([
      rooms.getEvents([eventId], { userId: requester.userId, deviceId: requester.deviceId }),
      rooms.getEventStreamPos(eventId),
    ]);
    const ev: ClientEvent | undefined = events.get(eventId);
    if (!ev || (ev.room_id !== undefined && ev.room_id !== roomId) || pos === null) {
      throw notFound('Event not found in this room');
    }
    if (threadId !== undefined) {
      // receipts.yaml: a threaded receipt's event must be in that thread (the root counts as in it), or in no thread for 'main'.
      const rel = ev.content?.['m.relates_to'] as { rel_type?: unknown; event_id?: unknown } | undefined;
      const thread = rel?.rel_type === 'm.thread' && typeof rel.event_id === 'string' ? rel.event_id : null;
      const fits = threadId === 'main' ? thread === null : thread === threadId || eventId === threadId;
      if (!fits) throw invalidParam(`The event is not in thread ${threadId}`);
    }
    return pos;
  }

  private async assertJoined(userId: string, roomId: string): Promise<void> {
    const memberships = await this.ctx.services.rooms.getMemberships(userId);
    if (!memberships.some((m) => m.roomId === roomId && m.membership === 'join')) {
      throw forbidden('You are not joined to this room');
    }
  }

  // ---- account data and tags ----

  async getAccountDataFor(requester: Requester, userId: string, roomId: string | null, type: string): Promise<JsonObject> {
    if (userId !== requester.userId) throw forbidden('Cannot read account data of other users');
    if (roomId !== null) checkRoomId(roomId);
    const content = await this.accountData.get(userId, roomId, type);
    if (content === null) throw notFound(roomId === null ? 'Account data not found' : 'Room account data not found');
    return content;
  }

  async putAccountDataFor(requester: Requester, userId: string, roomId: string | null, type: string, content: JsonObject): Promise<void> {
    if (userId !== requester.userId) throw forbidden('Cannot add account data for other users');
    if (roomId !== null) checkRoomId(roomId);
    if (SERVER_MANAGED_ACCOUNT_DATA.has(type)) {
      throw new MatrixError(405, 'M_BAD_JSON', `Cannot set ${type} through this API`);
    }
    await this.accountData.set(userId, roomId, type, content);
  }

  async getTags(requester: Requester, userId: string, roomId: string): Promise<JsonObject> {
    if (userId !== requester.userId) throw forbidden('Cannot read tags of other users');
    const content = await this.accountData.get(userId, roomId, 'm.tag');
    const tags = content?.tags;
    return { tags: tags && typeof tags === 'object' && !Array.isArray(tags) ? tags : {} };
  }

  async putTag(requester: Requester, userId: string, roomId: string, tag: string, body: JsonObject): Promise<void> {
    if (userId !== requester.userId) throw forbidden('Cannot tag rooms for other users');
    if (Buffer.byteLength(tag, 'utf8') > 255) throw invalidParam('Tag names must not exceed 255 bytes');
    await this.accountData.update(userId, roomId, 'm.tag', (old) => ({ tags: { ...tagsOf(old), [tag]: body } }));
  }

  async deleteTag(requester: Requester, userId: string, roomId: string, tag: string): Promise<void> {
    if (userId !== requester.userId) throw forbidden('Cannot untag rooms for other users');
    await this.accountData.update(userId, roomId, 'm.tag', (old) => {
      const tags = tagsOf(old);
      if (!(tag in tags)) return null;
      delete tags[tag];
      return { tags };
    });
  }

  // ---- presence ----

  async getPresence(requester: Requester, userId: string): Promise<JsonObject> {
    if (userId !== requester.userId) {
      const sharing = await this.ctx.services.rooms.getUsersSharingRooms(requester.userId);
      if (!sharing.has(userId)) throw forbidden('You are not allowed to see their presence');
    }
    if (!this.presence.enabled) return { presence: 'offline' };
    const row = await this.presence.get(userId);
    if (!row && userId !== requester.userId && !(await this.ctx.services.accounts.userExists(userId))) {
      throw notFound('No presence for this user');
    }
    const content = this.presence.content(row);
    if (row) content.status_msg = row.status_msg;
    return content;
  }

  async setPresence(requester: Requester, userId: string, presence: PresenceState, statusMsg: string | undefined): Promise<void> {
    if (userId !== requester.userId) throw forbidden('Cannot set presence for other users');
    await this.presence.setByClient(userId, presence, statusMsg);
  }
}

function maxPositions(a: StreamPositions, b: StreamPositions): StreamPositions {
  const out = { ...a };
  for (const s of STREAMS) if (b[s] > out[s]) out[s] = b[s];
  return out;
}

function checkRoomId(roomId: string): void {
  if (!isValidRoomId(roomId)) throw invalidParam(`${roomId} is not a valid room ID`);
}

function tagsOf(content: JsonObject | null): JsonObject {
  const tags = content?.tags;
  return tags && typeof tags === 'object' && !Array.isArray(tags) ? { ...(tags as JsonObject) } : {};
}
