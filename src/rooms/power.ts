import { parsePowerLevels, roomCreators, type PowerLevels } from '../core/power-levels.js';
import { stateKey } from '../core/types.js';
import type { RoomsCore } from './room-core.js';
import type { RoomHead } from './state/room-head.js';

const CREATE_KEY = stateKey('m.room.create', '');
const PL_KEY = stateKey('m.room.power_levels', '');

/** The room's current power levels, parsed with the version's rules and creators. */
export async function headPowerLevels(core: RoomsCore, head: RoomHead): Promise<PowerLevels> {
  const ids = [head.state.get(CREATE_KEY), head.state.get(PL_KEY)].filter((x): x is string => x !== undefined);
  const loaded = await core.events.getMany(ids);
  const create = loaded.get(head.state.get(CREATE_KEY) ?? '');
  const pl = loaded.get(head.state.get(PL_KEY) ?? '');
  const creators = create ? roomCreators(create.pdu, head.version) : new Set([head.creator]);
  return parsePowerLevels(pl?.pdu.content, head.version, creators);
}
