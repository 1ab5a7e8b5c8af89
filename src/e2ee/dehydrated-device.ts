/**
 * Dehydrated devices (MSC3814, `/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device`):
 * a user keeps one device that no client runs. It has keys, so others encrypt to it while the
 * user is offline; its private keys travel only inside `device_data`, which the client encrypted
 * and this server stores as it came. A new client of the user later fetches the data, rehydrates
 * the device and reads its to-device messages through `/events`.
 */
import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import { readStreamPositions } from '../db/stream-positions.js';
import { badJson, forbidden, invalidParam, missingParam, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import type { Route } from '../http/router.js';
import { checkDeviceKeys, parseKeyMap } from './key-objects.js';
import { deleteDehydratedDevice, selectDehydratedDevice, upsertDehydratedDevice } from './dehydrated-devices-table.js';

export const DEHYDRATION_FEATURE = 'org.matrix.msc3814';
const PREFIX = '/org.matrix.msc3814.v1/dehydrated_device';
/** To-device messages per `/events` answer. */
const EVENTS_LIMIT = 100;

interface PutBody {
  device_id?: unknown;
  device_data?: unknown;
  initial_device_display_name?: unknown;
  device_keys?: unknown;
  one_time_keys?: unknown;
  fallback_keys?: unknown;
}

export class DehydratedDevices {
  constructor(private readonly ctx: Context) {}

  /** The user's dehydrated device, when it still exists (deleting the device or logging out all devices removes it). */
  private async current(userId: string): Promise<{ deviceId: string; data: JsonObject } | null> {
    const row = await selectDehydratedDevice(this.ctx.db, userId);
    if (!row) return null;
    const devices = (await this.ctx.services.accounts.getDevices([userId])).get(userId) ?? [];
    if (!devices.some((d) => d.deviceId === row.device_id)) {
      await deleteDehydratedDevice(this.ctx.db, userId);
      return null;
    }
    return { deviceId: row.device_id, data: JSON.parse(row.device_data) as JsonObject };
  }

  async get(requester: Requester): Promise<{ device_id: string; device_data: JsonObject }> {
    const cur = await this.current(requester.userId);
    if (!cur) throw notFound('No dehydrated device');
    return { device_id: cur.deviceId, device_data: cur.data };
  }

  /** Makes (or replaces) the dehydrated device and uploads its keys. */
  async put(requester: Requester, body: PutBody): Promise<{ device_id: string }> {
    const { userId } = requester;
    if (typeof body.device_id !== 'string') throw missingParam('device_id is required');
    if (body.device_data === null || typeof body.device_data !== 'object' || Array.isArray(body.device_data)) {
      throw badJson('device_data must be an object');
    }
    if (body.initial_device_display_name !== undefined && typeof body.initial_device_display_name !== 'string') {
      throw badJson('initial_device_display_name must be a string');
    }
    const deviceId = body.device_id;
    // Keys are checked before anything is written: a bad upload must not cost the user the dehydrated device they have.
    if (body.device_keys !== undefined) checkDeviceKeys(body.device_keys, userId, deviceId);
    parseKeyMap(body.one_time_keys, 'one_time_keys');
    parseKeyMap(body.fallback_keys, 'fallback_keys');
    const existing = await this.current(userId);
    const added = await this.ctx.services.accounts.sessions.addDeviceWithoutToken(
      userId,
      deviceId,
      body.initial_device_display_name as string | undefined,
      existing?.deviceId,
      (trx) => upsertDehydratedDevice(trx, { user_id: userId, device_id: deviceId, device_data: JSON.stringify(body.device_data) }),
    );
    if (!added) throw invalidParam(`You already have a device ${deviceId}`);
    const keys: JsonObject = {};
    for (const k of ['device_keys', 'one_time_keys', 'fallback_keys'] as const) if (body[k] !== undefined) keys[k] = body[k] as JsonObject;
    try {
      await this.ctx.services.e2ee.uploadKeys({ ...requester, deviceId }, keys);
    } catch (e) {
      // What the checks above could not see (a one-time key already held with other content): the device is useless without its keys.
      await this.remove(userId, deviceId);
      throw e;
    }
    return { device_id: deviceId };
  }

  async delete(requester: Requester): Promise<{ device_id: string }> {
    const cur = await this.current(requester.userId);
    if (!cur) throw notFound('No dehydrated device');
    await this.remove(requester.userId, cur.deviceId);
    return { device_id: cur.deviceId };
  }

  /**
   * The dehydrated device's to-device messages after `next_batch`; those up to it are deleted,
   * since the client that asked again has them.
   */
  async events(requester: Requester, deviceId: string, body: { next_batch?: unknown }): Promise<{ events: JsonObject[]; next_batch: string }> {
    const cur = await this.current(requester.userId);
    if (!cur) throw notFound('No dehydrated device');
    if (cur.deviceId !== deviceId) throw forbidden('That is not your dehydrated device');
    let from = 0;
    if (body.next_batch !== undefined) {
      if (typeof body.next_batch !== 'string' || !/^\d{1,15}$/.test(body.next_batch)) throw invalidParam('Unknown next_batch');
      from = Number(body.next_batch);
      await this.ctx.services.e2ee.ackToDevice(requester.userId, deviceId, from);
    }
    const head = (await readStreamPositions(this.ctx.db)).to_device;
    const { events, nextPos } = await this.ctx.services.e2ee.getToDevice(requester.userId, deviceId, from, head, EVENTS_LIMIT);
    return { events, next_batch: String(Math.max(nextPos, from)) };
  }

  private async remove(userId: string, deviceId: string): Promise<void> {
    await deleteDehydratedDevice(this.ctx.db, userId);
    await this.ctx.services.accounts.sessions.deleteDevices(userId, [deviceId]);
  }
}

export function dehydratedDeviceRoutes(ctx: Context): Route[] {
  const devices = new DehydratedDevices(ctx);
  const object = { type: 'object' };
  return [
    { method: 'GET', path: PREFIX, versions: ['unstable'], handler: (req) => devices.get(req.requester) },
    {
      method: 'PUT',
      path: PREFIX,
      versions: ['unstable'],
      schema: {
        body: {
          type: 'object',
          required: ['device_id', 'device_data'],
          properties: { device_id: { type: 'string' }, device_data: object, initial_device_display_name: { type: 'string' }, device_keys: object, one_time_keys: object, fallback_keys: object },
        },
      },
      handler: (req) => devices.put(req.requester, req.body),
    },
    { method: 'DELETE', path: PREFIX, versions: ['unstable'], handler: (req) => devices.delete(req.requester) },
    {
      method: 'POST',
      path: `${PREFIX}/:deviceId/events`,
      versions: ['unstable'],
      schema: { body: { type: 'object', properties: { next_batch: { type: 'string' } } } },
      handler: (req) => devices.events(req.requester, req.params.deviceId, req.body),
    },
  ];
}

