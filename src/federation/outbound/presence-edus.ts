/**
 * Presence of this server's users as `m.presence` EDUs (spec: server-server API, "Presence") for
 * every server with a user who shares a room with them, sent when a change others should see
 * takes a position on the presence stream (the bus names the user).
 */
import type { Logger } from 'pino';
import type { Bus } from '../../cluster/bus.js';
import { serverNameOf } from '../../core/ids.js';
import type { JsonObject } from '../../core/types.js';
import type { FederationSender } from './sender.js';

export interface PresenceSources {
  /** The user's presence as others see it now (the content of an m.presence event). */
  content(userId: string): Promise<JsonObject>;
  usersSharingRooms(userId: string): Promise<Set<string>>;
}

export class PresenceEduProducer {
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly deps: { bus: Bus; serverName: string; sender: FederationSender; sources: PresenceSources; logger: Logger }) {}

  start(): void {
    this.unsubscribe = this.deps.bus.onAdvance((msg) => {
      if (msg.stream !== 'presence') return;
      for (const userId of msg.userIds ?? []) {
        if (serverNameOf(userId) !== this.deps.serverName) continue;
        void this.announce(userId).catch((e: unknown) => this.deps.logger.warn({ err: e }, 'presence EDU not sent'));
      }
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  private async announce(userId: string): Promise<void> {
    const servers = new Set<string>();
    for (const u of await this.deps.sources.usersSharingRooms(userId)) {
      const s = serverNameOf(u);
      if (s !== undefined && s !== this.deps.serverName) servers.add(s);
    }
    if (servers.size === 0) return;
    const content = await this.deps.sources.content(userId);
    await this.deps.sender.sendEduToServers(servers, { edu_type: 'm.presence', content: { push: [{ ...content, user_id: userId }] } });
  }
}
