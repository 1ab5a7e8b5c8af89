/**
 * Redactions a partial-state fill withdraws (rejected or soft-failed by the re-check, see
 * fill-partial-state.ts) stop redacting their targets. Redaction only marks the target
 * (`redacted_by`; its stored JSON is never pruned, the client format prunes it), so undoing one
 * is clearing the mark, unless another redaction of the target stands and applies (spec: rooms,
 * "Handling redactions"): that one was not marked because the target was redacted already, and
 * it redacts the target now.
 */
import { redactsOf } from '../../core/auth-rules.js';
import { stateKey } from '../../core/types.js';
import type { DbOrTx } from '../../db/schema.js';
import type { EventStore } from '../events/event-store.js';
import type { StoredEvent } from '../events/stored-event.js';
import type { RoomHead } from '../state/room-head.js';
import { selectEventsByIds, selectRedactionIdsOf } from '../store/events-table.js';
import { redactionToApply } from './redaction-target.js';

const PL_KEY = stateKey('m.room.power_levels', '');

/** A target of a withdrawn redaction: `by` is the redaction that redacts it now, null when none does. */
export interface Unredaction {
  target: StoredEvent;
  by: string | null;
}

/**
 * The targets the `withdrawn` redactions had marked, each with its standing redaction if any;
 * `head` is the room's head once filled (its power levels judge a standing redaction, as they
 * judge a received one).
 */
export async function undoneRedactions(db: DbOrTx, events: EventStore, head: RoomHead, withdrawn: readonly StoredEvent[]): Promise<Unredaction[]> {
  const gone = new Set(withdrawn.map((ev) => ev.eventId));
  /** Each target with the withdrawn redactions of it. */
  const marked = new Map<string, Set<string>>();
  for (const ev of withdrawn) {
    const r = ev.pdu.type === 'm.room.redaction' ? redactsOf(ev.pdu, head.version) : undefined;
    if (r === undefined) continue;
    let set = marked.get(r);
    if (!set) marked.set(r, (set = new Set()));
    set.add(ev.eventId);
  }
  if (marked.size === 0) return [];
  // Read from the rows: the mark may have been written by another node after this one cached the target.
  const targets = (await selectEventsByIds(db, [...marked.keys()])).map((row) => events.fromRow(row));
  const undone = targets.filter((t) => t.redactedBy !== null && marked.get(t.eventId)!.has(t.redactedBy));
  if (undone.length === 0) return [];

  const others = await selectRedactionIdsOf(db, undone.map((t) => t.eventId));
  const candidates = await events.getMany(others.map((o) => o.event_id).filter((id) => !gone.has(id)));
  const standing = (ev: StoredEvent | undefined): ev is StoredEvent =>
    ev !== undefined && ev.roomId === head.roomId && !ev.outlier && ev.streamPos !== null && ev.rejectedReason === null && !ev.softFailed;
  const plId = head.state.get(PL_KEY);
  const pl = plId === undefined ? undefined : await events.get(plId);
  const authEvents = new Map<string, StoredEvent>(pl ? [[PL_KEY, pl]] : []);
  const out: Unredaction[] = [];
  for (const target of undone) {
    const rivals = others
      .filter((o) => o.redacts === target.eventId)
      .map((o) => candidates.get(o.event_id))
      .filter(standing)
      .sort((x, y) => x.streamPos! - y.streamPos!);
    // Judged as if the target were not redacted, which it is not once the withdrawn one lets go.
    const bare: StoredEvent = { ...target, redactedBy: null };
    const load = async (ids: string[]) => {
      const got = await events.getMany(ids);
      if (got.has(target.eventId)) got.set(target.eventId, bare);
      return got;
    };
    let by: string | null = null;
    for (const r of rivals) {
      if ((await redactionToApply(head, r.pdu, r.eventId, authEvents, load)) !== target.eventId) continue;
      by = r.eventId;
      break;
    }
    out.push({ target, by });
  }
  return out;
}
