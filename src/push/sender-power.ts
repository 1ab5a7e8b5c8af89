import { boundedCache } from '../bounded-cache.js';
import type { Context } from '../context.js';
import { parsePowerLevels, roomCreators, userPowerLevel } from '../core/power-levels.js';
import { getRoomVersion, type RoomVersion } from '../core/room-versions.js';
import type { JsonObject, Pdu } from '../core/types.js';

interface RoomCreation {
  version: RoomVersion;
  creators: Set<string>;
}

/**
 * The sender's power level for `sender_notification_permission`. The
 * pipeline hands push the power levels content only; creators (infinite in
 * v12 rooms, 100 without a power levels event before that) come from the
 * room's create event, which never changes, so it is read once per room.
 */
export class SenderPower {
  private readonly creations = boundedCache<string, RoomCreation>(10_000);

  constructor(private readonly ctx: Context) {}

  async level(roomId: string | undefined, sender: string, powerLevels: Record<string, unknown> | undefined): Promise<number> {
    const creation = roomId ? await this.creation(roomId) : undefined;
    if (!creation) return fallbackLevel(powerLevels, sender);
    const pl = parsePowerLevels(powerLevels as JsonObject | undefined, creation.version, creation.creators);
    return userPowerLevel(pl, sender);
  }

  private async creation(roomId: string): Promise<RoomCreation | undefined> {
    const hit = this.creations.get(roomId);
    if (hit) return hit;
    let create;
    try {
      [create] = await this.ctx.services.rooms.getCurrentState(roomId, ['m.room.create']);
    } catch (e) {
      if (e instanceof Error && e.message === 'unimplemented') return undefined;
      throw e;
    }
    if (!create) return undefined;
    const v = create.content.room_version;
    const version = getRoomVersion(typeof v === 'string' ? v : '1');
    if (!version) return undefined;
    const creation = { version, creators: roomCreators(create as unknown as Pdu, version) };
    this.creations.set(roomId, creation);
    return creation;
  }
}

/** Without the create event: the explicit level, else users_default, else 0. */
function fallbackLevel(powerLevels: Record<string, unknown> | undefined, sender: string): number {
  const users = powerLevels?.users;
  const explicit = users && typeof users === 'object' ? (users as Record<string, unknown>)[sender] : undefined;
  if (typeof explicit === 'number') return explicit;
  const d = powerLevels?.users_default;
  return typeof d === 'number' ? d : 0;
}
