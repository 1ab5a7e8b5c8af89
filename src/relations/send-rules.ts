import type { JsonObject } from '../core/types.js';
import type { Db } from '../db/schema.js';
import { MatrixError } from '../http/errors.js';
import type { RoomsCore } from '../rooms/room-core.js';
import { relationOf } from './relation-of.js';
import { hasAnnotation } from './relations-table.js';

/**
 * What the server refuses of a client's related event:
 * - a second annotation by the same user of the same event with the same
 *   type and key, 400 M_DUPLICATE_ANNOTATION (modules/event_annotations;
 *   a redacted annotation left the index, so it may be sent again);
 * - a thread started from an event that itself has a relation, 400 M_UNKNOWN
 *   (modules/threading "Validation of m.thread relationships").
 */
export async function checkRelatedSend(db: Db, core: RoomsCore, roomId: string, sender: string, type: string, content: JsonObject): Promise<void> {
  const rel = relationOf('', { content });
  if (!rel) return;
  if (rel.relType === 'm.annotation' && rel.key !== null) {
    if (await hasAnnotation(db, rel.parentId, type, rel.key, sender)) {
      throw new MatrixError(400, 'M_DUPLICATE_ANNOTATION', 'You have already sent this annotation');
    }
  } else if (rel.relType === 'm.thread') {
    const parent = await core.events.get(rel.parentId);
    if (parent && parent.roomId === roomId && relationOf(parent.eventId, parent.pdu) !== null) {
      throw new MatrixError(400, 'M_UNKNOWN', 'Cannot start a thread from an event with a relation');
    }
  }
}
