import type { Context } from '../context.js';
import { invalidParam, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { getDevice, listDevices, setDeviceDisplayName } from './device-store.js';
import type { Sessions } from './sessions.js';
import type { DeviceRow } from './tables.js';
import type { UiaRequest, UserInteractiveAuth } from './uia.js';

type RequestInfo = Omit<UiaRequest, 'body' | 'userId'>;

/** Device display names are public; a short cap keeps them names. */
const MAX_DEVICE_NAME_LENGTH = 100;

export interface ClientDevice {
  device_id: string;
  display_name?: string;
  last_seen_ip?: string;
  last_seen_ts?: number;
}

function toClient(d: DeviceRow): ClientDevice {
  const out: ClientDevice = { device_id: d.device_id };
  if (d.display_name !== null) out.display_name = d.display_name;
  if (d.last_seen_ip !== null) out.last_seen_ip = d.last_seen_ip;
  if (d.last_seen_ts !== null) out.last_seen_ts = d.last_seen_ts;
  return out;
}

/** The device management module (spec: modules/device_management.md). */
export class Devices {
  constructor(
    private readonly ctx: Context,
    private readonly sessions: Sessions,
    private readonly uia: UserInteractiveAuth,
  ) {}

  async list(requester: Requester): Promise<{ devices: ClientDevice[] }> {
    return { devices: (await listDevices(this.ctx.db, requester.userId)).map(toClient) };
  }

  async get(requester: Requester, deviceId: string): Promise<ClientDevice> {
    const d = await getDevice(this.ctx.db, requester.userId, deviceId);
    if (!d) throw notFound('Unknown device');
    return toClient(d);
  }

  /** PUT /devices/{deviceId}: only existing devices (creating them is for application services). */
  async update(requester: Requester, deviceId: string, body: { display_name?: string }): Promise<object> {
    if (body.display_name === undefined) {
      if (!(await getDevice(this.ctx.db, requester.userId, deviceId))) throw notFound('Unknown device');
      return {};
    }
    if (body.display_name.length > MAX_DEVICE_NAME_LENGTH) {
      throw invalidParam(`Device display name is too long (max ${MAX_DEVICE_NAME_LENGTH})`);
    }
    if (!(await setDeviceDisplayName(this.ctx.db, requester.userId, deviceId, body.display_name))) throw notFound('Unknown device');
    return {};
  }

  /** DELETE /devices/{deviceId} and POST /delete_devices, behind the user's password. Unknown ids are not an error. */
  async delete(requester: Requester, deviceIds: string[], body: Record<string, unknown>, req: RequestInfo): Promise<object> {
    await this.uia.check({ ...req, body, userId: requester.userId }, [['m.login.password']]);
    await this.sessions.deleteDevices(requester.userId, [...new Set(deviceIds)]);
    return {};
  }
}
