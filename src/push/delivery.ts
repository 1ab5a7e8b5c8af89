/**
 * The pusher: sends each stored push outcome (push-outcomes-store.ts) to the
 * HTTP push gateways of the users it notifies, in stream order.
 *
 * It is a consumer of the outcomes by stream position: the position it has
 * delivered up to is stored (push_delivery_position) after each batch, so a
 * restart resumes after the last batch it finished and loses nothing (an
 * outcome of an unfinished batch may be sent twice; gateways suppress
 * duplicates by event_id, as the push gateway API asks). One node sends,
 * under the `pusher` lease; the position is written only while the lease is
 * still held.
 *
 * A failed request is retried with exponential backoff while the gateway
 * may recover (unreachable, 5xx, 429), then given up with a log line; a
 * pushkey the gateway lists as `rejected` loses its pusher at once. A pusher
 * whose gateway kept failing is skipped for a while (doubling from a minute
 * up to an hour, reset by a success), so one dead gateway does not hold up
 * everyone else's notifications behind its retries.
 */
import type { Context } from '../context.js';
import type { Lease } from '../cluster/leases.js';
import type { ClientEvent, JsonObject } from '../core/types.js';
import { createOutboundGuard, isCidrList, outboundAllowFromEnv } from '../http/outbound-guard.js';
import { ConfigError } from '../config/validate.js';
import { anyHttpPusher, putDeliveryPosition, selectDeliveryPosition, selectNewestOutcomePos, selectOutcomesAfter, selectPushTargets, type PushTarget } from './delivery-store.js';
import { GatewayClient, GatewayFailed } from './gateway-client.js';
import { deletePusher } from './pushers-store.js';
import type { PushOutcomeRow } from './tables.js';

const LEASE = 'pusher';
const BATCH = 50;
/** Attempts per notification and pusher; the waits between them double from the first. */
const ATTEMPTS = 5;
const FIRST_RETRY_MS = 500;
/** How often a node that does not hold the lease tries to take it (and the holder re-checks the stream). */
const POLL_MS = 5_000;
/** Sends come in bursts: one run after the first poke covers the whole burst. */
const COALESCE_MS = 100;
/** With no HTTP pusher anywhere the position only moves in memory, and is stored this often (and on stop). */
const IDLE_SAVE_MS = 10_000;
const FIRST_PAUSE_MS = 60_000;
const MAX_PAUSE_MS = 60 * 60_000;

export interface DeliveryDeps {
  /** The user's unread notification count across their rooms (`counts.unread`). */
  unreadTotal(userId: string): Promise<number>;
}

export class PushDelivery {
  private client: GatewayClient | null = null;
  private lease: Lease | null = null;
  private running: Promise<void> | null = null;
  private pending: NodeJS.Timeout | null = null;
  private again = false;
  /** Delivered up to here, while `lease` is held; `saved` is what the table holds. */
  private pos: number | null = null;
  private saved: { pos: number; at: number } | null = null;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly sleeping = new Set<() => void>();
  /** Pushers whose gateway kept failing: skipped until `until`; the next pause is twice `pause`. */
  private readonly paused = new Map<string, { until: number; pause: number }>();

  constructor(private readonly ctx: Context, private readonly deps: DeliveryDeps) {}

  start(): void {
    const allow = outboundAllowFromEnv();
    if (!isCidrList(allow)) throw new ConfigError('(environment)', 'HEARTH_OUTBOUND_ALLOW', 'must be comma-separated CIDRs like "10.0.0.0/8"');
    this.client = new GatewayClient(createOutboundGuard(allow));
    this.unsubscribe = this.ctx.bus.onAdvance((m) => {
      if (m.stream === 'events') this.poke();
    });
    this.timer = setInterval(() => this.poke(), POLL_MS);
    this.timer.unref();
    this.poke();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
    for (const wake of this.sleeping) wake();
    await this.running;
    if (this.lease && this.pos !== null && this.saved?.pos !== this.pos && this.ctx.leases.stillHeld(this.lease)) {
      await putDeliveryPosition(this.ctx.db, LEASE, this.pos);
    }
    if (this.lease) await this.ctx.leases.release(this.lease);
    await this.client?.close();
  }

  /** Something may be new: run shortly (once for a burst), or once more after the run in progress. */
  poke(): void {
    if (this.stopped || this.pending) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.pending = setTimeout(() => {
      this.pending = null;
      this.run();
    }, COALESCE_MS);
  }

  private run(): void {
    if (this.stopped) return;
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.catchUp();
        } catch (err) {
          this.ctx.logger.warn({ err }, 'push delivery failed; retrying later');
        }
      } while (this.again && !this.stopped);
      this.running = null;
    })();
  }

  /** Sends every outcome after the stored position, a batch at a time. */
  private async catchUp(): Promise<void> {
    if (this.lease && !this.ctx.leases.stillHeld(this.lease)) this.lease = null;
    if (!this.lease) {
      this.lease = await this.ctx.leases.acquire(LEASE);
      // A new holder starts from the stored position: the previous one may have moved it.
      this.pos = null;
    }
    const lease = this.lease;
    if (!lease) return;
    let pos = this.pos ?? (await selectDeliveryPosition(this.ctx.db, LEASE));
    if (pos === null) {
      // The first start sends what is new from now on, not the history of an existing server.
      pos = await selectNewestOutcomePos(this.ctx.db);
      await this.save(pos);
    }
    this.pos = pos;
    while (!this.stopped) {
      // Read before the pusher check, so a pusher set after the check misses only events older than itself.
      const newest = await selectNewestOutcomePos(this.ctx.db);
      if (newest <= pos) return;
      if (!(await anyHttpPusher(this.ctx.db))) {
        // Nobody to send to: the outcomes up to `newest` are done without reading them one by one.
        // Stored now and then, not per event: a restart in between repeats no delivery (there was none).
        this.pos = newest;
        if (this.ctx.leases.stillHeld(lease) && (this.saved === null || this.ctx.now() - this.saved.at >= IDLE_SAVE_MS)) await this.save(newest);
        return;
      }
      const batch = await selectOutcomesAfter(this.ctx.db, pos, newest, BATCH);
      for (const outcome of batch) {
        if (this.stopped || !this.ctx.leases.stillHeld(lease)) return;
        await this.deliver(outcome);
        pos = outcome.stream_pos;
        this.pos = pos;
      }
      // A short batch held every outcome up to `newest`: the events after the last one notify nobody.
      if (batch.length < BATCH) {
        pos = newest;
        this.pos = pos;
      }
      if (!this.ctx.leases.stillHeld(lease)) return;
      await this.save(pos);
    }
  }

  private async save(pos: number): Promise<void> {
    await putDeliveryPosition(this.ctx.db, LEASE, pos);
    this.saved = { pos, at: this.ctx.now() };
  }

  private async deliver(outcome: PushOutcomeRow): Promise<void> {
    const targets = await selectPushTargets(this.ctx.db, outcome);
    if (targets.length === 0) return;
    const event = (await this.ctx.services.rooms.getEvents([outcome.event_id])).get(outcome.event_id);
    if (!event) return;
    const room = await this.roomInfo(outcome.room_id);
    const senderName = (await this.ctx.services.accounts.getProfile(event.sender).catch(() => null))?.displayname;
    const unread = new Map<string, number>();
    for (const t of targets) {
      if (!unread.has(t.pusher.user_id)) unread.set(t.pusher.user_id, await this.deps.unreadTotal(t.pusher.user_id));
    }
    await Promise.all(targets.map((t) => this.send(t, notification(t, event, room, senderName, unread.get(t.pusher.user_id)!))));
  }

  private async roomInfo(roomId: string): Promise<{ id: string; name?: string; alias?: string }> {
    const state = await this.ctx.services.rooms.getCurrentState(roomId, ['m.room.name', 'm.room.canonical_alias']);
    const content = (type: string) => state.find((e) => e.type === type && e.state_key === '')?.content;
    const name = content('m.room.name')?.name;
    const alias = content('m.room.canonical_alias')?.alias;
    return { id: roomId, name: typeof name === 'string' ? name : undefined, alias: typeof alias === 'string' ? alias : undefined };
  }

  /** One notification to one pusher, retried with backoff while the gateway may recover. */
  private async send(t: PushTarget, body: JsonObject): Promise<void> {
    const { pusher } = t;
    const url = (JSON.parse(pusher.data) as { url?: unknown }).url;
    if (typeof url !== 'string') return;
    const key = JSON.stringify([pusher.user_id, pusher.app_id, pusher.pushkey]);
    const paused = this.paused.get(key);
    if (paused && paused.until > this.ctx.now()) return;
    for (let attempt = 1; ; attempt++) {
      try {
        const rejected = await this.client!.notify(url, body);
        this.paused.delete(key);
        if (rejected.includes(pusher.pushkey)) {
          await deletePusher(this.ctx.db, pusher.user_id, pusher.app_id, pusher.pushkey);
          this.ctx.logger.info({ userId: pusher.user_id, appId: pusher.app_id }, 'push gateway rejected a pushkey; pusher removed');
        }
        return;
      } catch (err) {
        const retry = err instanceof GatewayFailed && err.retry && attempt < ATTEMPTS && !this.stopped;
        if (!retry) {
          this.ctx.logger.warn({ err, userId: pusher.user_id, appId: pusher.app_id, attempt }, 'push notification not delivered');
          if (err instanceof GatewayFailed && err.retry) {
            const pause = paused ? Math.min(paused.pause * 2, MAX_PAUSE_MS) : FIRST_PAUSE_MS;
            this.paused.set(key, { until: this.ctx.now() + pause, pause });
          }
          return;
        }
        await this.sleep(FIRST_RETRY_MS * 2 ** (attempt - 1));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleeping.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleeping.add(wake);
    });
  }
}

/** The tweaks a rule's actions set (`set_tweak`), as the gateway receives them per device. */
function tweaksOf(actions: string): JsonObject {
  const tweaks: JsonObject = {};
  for (const a of JSON.parse(actions) as unknown[]) {
    if (typeof a !== 'object' || a === null) continue;
    const { set_tweak, value } = a as { set_tweak?: unknown; value?: unknown };
    if (typeof set_tweak === 'string') tweaks[set_tweak] = (value ?? (set_tweak === 'highlight' ? true : null)) as JsonObject[string];
  }
  return tweaks;
}

/** The body of POST /_matrix/push/v1/notify for one pusher (push_notifier.yaml). */
function notification(t: PushTarget, event: ClientEvent, room: { id: string; name?: string; alias?: string }, senderName: string | undefined, unread: number): JsonObject {
  const { url: _url, ...data } = JSON.parse(t.pusher.data) as JsonObject;
  void _url;
  const device: JsonObject = {
    app_id: t.pusher.app_id,
    pushkey: t.pusher.pushkey,
    pushkey_ts: Math.floor(t.pusher.ts / 1000),
    data,
    tweaks: tweaksOf(t.actions),
  };
  const n: JsonObject = { event_id: event.event_id, room_id: room.id, prio: t.level >= 2 || isMessage(event) ? 'high' : 'low', devices: [device] };
  if (unread > 0) n.counts = { unread };
  if (data.format === 'event_id_only') return n;
  n.type = event.type;
  n.sender = event.sender;
  n.content = event.content;
  if (senderName !== undefined) n.sender_display_name = senderName;
  if (room.name !== undefined) n.room_name = room.name;
  if (room.alias !== undefined) n.room_alias = room.alias;
  if (event.type === 'm.room.member') n.user_is_target = event.state_key === t.pusher.user_id;
  return n;
}

function isMessage(event: ClientEvent): boolean {
  return event.type === 'm.room.message' || event.type === 'm.room.encrypted' || event.type === 'm.call.invite';
}
