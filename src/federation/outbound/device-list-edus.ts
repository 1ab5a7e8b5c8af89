/**
 * Device-list changes of this server's users as EDUs (`m.device_list_update`,
 * `m.signing_key_update`; spec: server-server API, "Device Management") for every server with a
 * user who shares a room with them. The device_lists stream is read by position when the bus
 * says it advanced; the EDUs themselves are made by the e2ee domain, which owns the keys.
 */
import type { Logger } from 'pino';
import type { Bus } from '../../cluster/bus.js';
import { serverNameOf } from '../../core/ids.js';
import type { DeviceListEdu } from '../../e2ee/local-device-lists.js';
import type { FederationSender } from './sender.js';

const PAGE = 200;
/** After a failed read or hand-over (the database away, say), the next try waits this long. */
const RETRY_MS = 1000;

export interface DeviceListSources {
  /** The stream's head now: changes before it are not sent again after a restart. */
  head(): Promise<number>;
  edusBetween(fromPos: number, toPos: number, limit: number): Promise<{ edus: DeviceListEdu[]; lastPos: number }>;
  usersSharingRooms(userId: string): Promise<Set<string>>;
}

export class DeviceListEduProducer {
  private readPos = 0;
  private target = 0;
  private running: Promise<void> | null = null;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly deps: { bus: Bus; serverName: string; sender: FederationSender; sources: DeviceListSources; logger: Logger }) {}

  async start(): Promise<void> {
    this.readPos = this.target = await this.deps.sources.head();
    this.unsubscribe = this.deps.bus.onAdvance((msg) => {
      if (msg.stream !== 'device_lists' || msg.pos <= this.target) return;
      this.target = msg.pos;
      this.kick();
    });
  }

  /** No more reads once the one under way ends. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.retry);
    await this.running;
  }

  /** Resolves once every change announced so far has been handed to the queues (tests). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    let failed = false;
    this.running = this.drain()
      .catch((e: unknown) => {
        failed = true;
        this.deps.logger.warn({ err: e }, 'device list EDUs not sent; retrying');
      })
      .finally(() => {
        this.running = null;
        if (this.stopped || this.readPos >= this.target) return;
        // Changes announced meanwhile are read at once; a failure is not retried in a tight loop.
        if (!failed) {
          this.kick();
          return;
        }
        clearTimeout(this.retry);
        this.retry = setTimeout(() => this.kick(), RETRY_MS);
        this.retry.unref();
      });
  }

  private async drain(): Promise<void> {
    while (this.readPos < this.target && !this.stopped) {
      const { edus, lastPos } = await this.deps.sources.edusBetween(this.readPos, this.target, PAGE);
      for (const { userId, edu } of edus) {
        const servers = new Set<string>();
        for (const u of await this.deps.sources.usersSharingRooms(userId)) {
          const s = serverNameOf(u);
          if (s !== undefined && s !== this.deps.serverName) servers.add(s);
        }
        await this.deps.sender.sendEduToServers(servers, edu);
      }
      this.readPos = lastPos;
    }
  }
}
