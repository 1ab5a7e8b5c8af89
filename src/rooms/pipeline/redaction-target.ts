import { redactsOf, shouldApplyRedaction } from '../../core/auth-rules.js';
import { parsePowerLevels, roomCreators } from '../../core/power-levels.js';
import { stateKey } from '../../core/types.js';
import type { StoredEvent } from '../events/stored-event.js';
import type { RoomHead } from '../state/room-head.js';

const CREATE_KEY = stateKey('m.room.create', '');
const PL_KEY = stateKey('m.room.power_levels', '');

/**
 * The stored event a redaction applies to now, if any (spec: rooms, "Handling redactions"): one
 * that is here, not redacted yet, and that the redaction's sender may redact under the power
 * levels in `authEvents`.
 */
export async function redactionToApply(
  head: RoomHead,
  pdu: StoredEvent['pdu'],
  eventId: string,
  authEvents: Map<string, StoredEvent>,
  load: (ids: string[]) => Promise<Map<string, StoredEvent>>,
): Promise<string | undefined> {
  const target = redactsOf(pdu, head.version);
  if (target === undefined) return undefined;
  const createId = head.state.get(CREATE_KEY);
  const loaded = await load(createId ? [target, createId] : [target]);
  const original = loaded.get(target);
  const create = createId ? loaded.get(createId) : undefined;
  if (!original || !create || original.redactedBy !== null) return undefined;
  const pl = parsePowerLevels(authEvents.get(PL_KEY)?.pdu.content, head.version, roomCreators(create.pdu, head.version));
  return shouldApplyRedaction({ eventId, pdu }, original, pl, head.version) ? target : undefined;
}
