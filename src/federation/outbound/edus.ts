/**
 * Typing notifications and public read receipts of this server's users, as EDUs for the servers
 * in the room (spec: server-server API, "Typing Notifications", "Receipts"). Both are read when
 * their stream advances on the bus: typing as the room's current typists compared with what was
 * last sent, receipts as the changes at the new position.
 */
import type { Logger } from 'pino';
import type { Bus, StreamAdvance } from '../../cluster/bus.js';
import { serverNameOf } from '../../core/ids.js';
import type { JsonObject } from '../../core/types.js';
import type { FederationSender } from './sender.js';

export interface EduSources {
  /** Who is typing in the room now. */
  typists(roomId: string): string[];
  /** Public receipt changes at positions (fromPos, toPos] in one room: event id → type → user → data. */
  receipts(roomId: string, fromPos: number, toPos: number): Promise<JsonObject | undefined>;
}

export class EduProducer {
  /** Local typists last announced, per room. */
  private readonly announced = new Map<string, Set<string>>();
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly deps: { bus: Bus; serverName: string; sender: FederationSender; sources: EduSources; logger: Logger },
  ) {}

  start(): void {
    this.unsubscribe = this.deps.bus.onAdvance((msg) => {
      if (msg.roomId === undefined) return;
      if (msg.stream === 'typing') this.onTyping(msg.roomId);
      else if (msg.stream === 'receipts') void this.onReceipts(msg).catch((e: unknown) => this.deps.logger.warn({ err: e }, 'receipt EDU not sent'));
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  private isLocal(userId: string): boolean {
    return serverNameOf(userId) === this.deps.serverName;
  }

  private onTyping(roomId: string): void {
    const now = new Set(this.deps.sources.typists(roomId).filter((u) => this.isLocal(u)));
    const before = this.announced.get(roomId) ?? new Set<string>();
    const changes: [string, boolean][] = [];
    for (const u of now) if (!before.has(u)) changes.push([u, true]);
    for (const u of before) if (!now.has(u)) changes.push([u, false]);
    if (now.size > 0) this.announced.set(roomId, now);
    else this.announced.delete(roomId);
    for (const [userId, typing] of changes) {
      void this.deps.sender.sendEdu(roomId, { edu_type: 'm.typing', content: { room_id: roomId, user_id: userId, typing } });
    }
  }

  private async onReceipts(msg: StreamAdvance): Promise<void> {
    const roomId = msg.roomId!;
    if (!(msg.userIds ?? []).some((u) => this.isLocal(u))) return;
    const changes = await this.deps.sources.receipts(roomId, msg.pos - 1, msg.pos);
    if (!changes) return;
    const byUser: JsonObject = {};
    for (const [eventId, byType] of Object.entries(changes)) {
      const readers = (byType as JsonObject)['m.read'] as JsonObject | undefined;
      for (const [userId, data] of Object.entries(readers ?? {})) {
        if (this.isLocal(userId)) byUser[userId] = { event_ids: [eventId], data: data as JsonObject };
      }
    }
    if (Object.keys(byUser).length === 0) return;
    await this.deps.sender.sendEdu(roomId, { edu_type: 'm.receipt', content: { [roomId]: { 'm.read': byUser } } });
  }
}
