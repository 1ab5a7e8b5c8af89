import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';

/**
 * Device keys, one-time and fallback keys, to-device messages and device
 * list changes. Methods below "cross-domain API" are used by sync and
 * accounts and keep their signatures.
 */
export class E2eeService {
  constructor(private readonly ctx: Context) {}

  // ---- cross-domain API ----

  /** To-device messages for a device with position in (fromPos, toPos], oldest first, at most `limit`; `nextPos` is the position of the last one returned (or toPos when all fit). */
  async getToDevice(userId: string, deviceId: string, fromPos: number, toPos: number, limit: number): Promise<{ events: JsonObject[]; nextPos: number }> {
    void [userId, deviceId, fromPos, toPos, limit];
    throw new Error('unimplemented');
  }

  /** Deletes a device's to-device messages up to and including `pos` (the client acknowledged them by syncing past it). */
  async ackToDevice(userId: string, deviceId: string, pos: number): Promise<void> {
    void [userId, deviceId, pos];
    throw new Error('unimplemented');
  }

  /** Users whose device list changed with position in (fromPos, toPos], limited to `among` when given. */
  async getDeviceListChanges(fromPos: number, toPos: number, among?: Set<string>): Promise<Set<string>> {
    void [fromPos, toPos, among];
    throw new Error('unimplemented');
  }

  async getOneTimeKeyCounts(userId: string, deviceId: string): Promise<Record<string, number>> {
    void [userId, deviceId];
    throw new Error('unimplemented');
  }

  async getUnusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]> {
    void [userId, deviceId];
    throw new Error('unimplemented');
  }

  /** A device was created or deleted: record a device list change (and drop the deleted devices' keys). */
  async onDevicesChanged(userId: string, deletedDeviceIds: string[]): Promise<void> {
    void [userId, deletedDeviceIds];
    throw new Error('unimplemented');
  }
}
