import { randomBytes } from 'node:crypto';
import type { Context } from '../context.js';
import { isValidUserId, serverNameOf } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import { nextPositions } from '../db/stream-positions.js';
import { badJson, invalidParam } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { isObject } from './key-objects.js';
import { claimToDeviceTxn, devicesWithQueued, insertToDevice } from './to-device-store.js';

/**
 * Undelivered messages a device may have waiting. A device that stopped syncing (a lost phone)
 * would otherwise collect every room key sent to it, for ever.
 */
export const MAX_QUEUED_TO_DEVICE = 10_000;

/**
 * Send-to-device messaging (spec: client-server "Send-to-device messaging", server-server
 * "Send-to-device messaging"): a client's messages go to the inboxes of this server's devices,
 * and to other servers' users as one `m.direct_to_device` EDU per server; messages from other
 * servers arrive the same way and are delivered once.
 */
export class ToDevice {
  constructor(
    private readonly ctx: Context,
    private readonly helpers: { deviceIdsOf(userIds: string[]): Promise<Map<string, string[]>> },
  ) {}

  async send(requester: Requester, type: string, txnId: string, messages: unknown): Promise<void> {
    if (!isObject(messages)) throw badJson('messages must be an object');
    const recipients = new Map<string, Map<string, JsonObject>>();
    const remote = new Map<string, Record<string, Record<string, JsonObject>>>();
    for (const [userId, byDevice] of Object.entries(messages)) {
      if (!isValidUserId(userId, { historical: true })) throw invalidParam(`Invalid user id: ${userId}`);
      if (!isObject(byDevice)) throw badJson(`messages.${userId} must map device ids to contents`);
      for (const [deviceId, content] of Object.entries(byDevice)) {
        if (!isObject(content)) throw badJson(`messages.${userId}.${deviceId} must be an object`);
      }
      const server = serverNameOf(userId)!;
      if (server !== this.ctx.serverName) {
        if (this.ctx.config.federation.enabled) (remote.get(server) ?? remote.set(server, {}).get(server)!)[userId] = byDevice as Record<string, JsonObject>;
        else this.ctx.logger.debug({ userId, type }, 'to-device message for a remote user dropped: federation is disabled');
        continue;
      }
      recipients.set(userId, new Map(Object.entries(byDevice) as [string, JsonObject][]));
    }
    const rows = await this.withoutFullInboxes(await this.toDeviceRows(recipients), requester.userId, type);

    // Other servers' users: one m.direct_to_device EDU per server (spec: server-server API,
    // "Send-to-device messaging"), stored with the local messages once the transaction id is
    // claimed, so it is sent once and survives the other server being down or this one restarting.
    const edus = [...remote].map(([destination, byUser]) => ({
      destination,
      edu: { edu_type: 'm.direct_to_device', content: { sender: requester.userId, type, message_id: randomBytes(12).toString('hex'), messages: byUser } },
    }));
    const sender = edus.length > 0 ? this.ctx.services.federation.sender : null;
    const now = this.ctx.now();
    const written = await this.ctx.db.transaction().execute(async (trx) => {
      if (!(await claimToDeviceTxn(trx, requester.userId, requester.deviceId, txnId, now))) return undefined;
      const destinations = sender ? await sender.storeEdusIn(trx, edus) : [];
      if (rows.length === 0) return { lastPos: undefined, destinations };
      const first = await nextPositions(trx, 'to_device', rows.length);
      await insertToDevice(
        trx,
        rows.map((r, i) => ({ ...r, pos: first + i, sender: requester.userId, type, message_id: randomBytes(12).toString('hex') })),
      );
      return { lastPos: first + rows.length - 1, destinations };
    });
    if (written?.lastPos !== undefined) {
      this.ctx.bus.publish({ stream: 'to_device', pos: written.lastPos, userIds: [...new Set(rows.map((r) => r.user_id))] });
    }
    if (written && sender) sender.edusStored(written.destinations);
  }

  /**
   * An `m.direct_to_device` EDU from `origin`: its messages for this server's devices go to
   * their inboxes once, however often the EDU arrives (the sender and `message_id` are
   * remembered like a client's transaction id), in the order the EDUs came.
   */
  async receive(origin: string, content: JsonObject): Promise<void> {
    const { sender, type, message_id: messageId, messages } = content;
    if (typeof sender !== 'string' || !isValidUserId(sender, { historical: true }) || serverNameOf(sender) !== origin) return;
    if (typeof type !== 'string' || typeof messageId !== 'string' || messageId === '' || !isObject(messages)) return;
    const recipients = new Map<string, Map<string, JsonObject>>();
    for (const [userId, byDevice] of Object.entries(messages)) {
      if (!isValidUserId(userId, { historical: true }) || serverNameOf(userId) !== this.ctx.serverName || !isObject(byDevice)) continue;
      recipients.set(userId, new Map(Object.entries(byDevice).filter(([, c]) => isObject(c)) as [string, JsonObject][]));
    }
    const rows = await this.withoutFullInboxes(await this.toDeviceRows(recipients), sender, type);
    const now = this.ctx.now();
    const lastPos = await this.ctx.db.transaction().execute(async (trx) => {
      // A remote sender has no device here: its server's message id stands in for the transaction id.
      if (!(await claimToDeviceTxn(trx, sender, '', messageId, now))) return undefined;
      if (rows.length === 0) return undefined;
      const first = await nextPositions(trx, 'to_device', rows.length);
      await insertToDevice(trx, rows.map((r, i) => ({ ...r, pos: first + i, sender, type, message_id: messageId })));
      return first + rows.length - 1;
    });
    if (lastPos !== undefined) {
      this.ctx.bus.publish({ stream: 'to_device', pos: lastPos, userIds: [...new Set(rows.map((r) => r.user_id))] });
    }
  }

  /**
   * The rows whose device has room in its inbox. A message for a full inbox is dropped, not
   * refused: a sender shares room keys with every device of a room in one request, and one
   * abandoned device must not keep the others from getting theirs. The drop is logged.
   */
  private async withoutFullInboxes<T extends { user_id: string; device_id: string }>(rows: T[], sender: string, type: string): Promise<T[]> {
    if (rows.length === 0) return rows;
    const full = await devicesWithQueued(this.ctx.db, [...new Set(rows.map((r) => r.user_id))], MAX_QUEUED_TO_DEVICE);
    if (full.length === 0) return rows;
    const isFull = new Set(full.map(([u, d]) => `${u}\u0000${d}`));
    const kept = rows.filter((r) => !isFull.has(`${r.user_id}\u0000${r.device_id}`));
    this.ctx.logger.warn({ sender, type, devices: full.map(([u, d]) => `${u} ${d}`), max: MAX_QUEUED_TO_DEVICE }, 'to-device message dropped for devices whose inbox is full');
    return kept;
  }

  /** One inbox row per local device addressed; `*` means every device of the user not named. */
  private async toDeviceRows(recipients: Map<string, Map<string, JsonObject>>): Promise<{ user_id: string; device_id: string; content: string }[]> {
    const wildcard = [...recipients].filter(([, byDevice]) => byDevice.has('*')).map(([u]) => u);
    const devicesOf = wildcard.length > 0 ? await this.helpers.deviceIdsOf(wildcard) : new Map<string, string[]>();
    const rows: { user_id: string; device_id: string; content: string }[] = [];
    for (const [userId, byDevice] of recipients) {
      const all = byDevice.get('*');
      const explicit = new Map([...byDevice].filter(([d]) => d !== '*'));
      if (all) for (const d of devicesOf.get(userId) ?? []) if (!explicit.has(d)) explicit.set(d, all);
      for (const [deviceId, content] of explicit) rows.push({ user_id: userId, device_id: deviceId, content: JSON.stringify(content) });
    }
    return rows;
  }
}
