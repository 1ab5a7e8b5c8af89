/**
 * `GET /_matrix/federation/v1/state_ids/{roomId}` and `/state/{roomId}` (events.yaml): the room's
 * state before `event_id` and the auth chain of that state, as ids or as events, to a server
 * allowed to see the event.
 */
import { forbidden, missingParam, notFound } from '../../http/errors.js';
import type { StoredEvent } from '../../rooms/events/stored-event.js';
import { RESIDENT_WAIT_MS } from '../membership/template.js';
import type { RoomReads } from '../room-reads.js';
import type { FederationRoute } from '../router.js';

const query = { type: 'object', properties: { event_id: { type: 'string' } } };

async function stateAt(reads: RoomReads, origin: string, roomId: string, eventId: unknown): Promise<{ state: StoredEvent[]; authChain: StoredEvent[] }> {
  if (typeof eventId !== 'string' || eventId === '') throw missingParam('event_id is required');
  const ev = await reads.event(eventId, roomId);
  if (!ev) throw notFound('Event not found in this room');
  if (!(await reads.visibleTo(origin, ev))) throw forbidden('Your server may not see the state at this event');
  const ids = await reads.stateBefore(ev);
  // While the room's state is partial, so may be the state at any event stored meanwhile.
  if (!ids || (await reads.hasPartialState(roomId, RESIDENT_WAIT_MS))) throw notFound('The state at this event is not known to this server');
  const state: StoredEvent[] = [];
  for (const id of ids.values()) {
    const s = await reads.event(id, roomId);
    if (s) state.push(s);
  }
  return { state, authChain: await reads.authChain(state) };
}

export function stateRoutes(reads: RoomReads): FederationRoute[] {
  return [
    {
      method: 'GET',
      url: '/_matrix/federation/v1/state_ids/:roomId',
      schema: { querystring: query },
      handler: async (req) => {
        const { state, authChain } = await stateAt(reads, req.origin, req.params.roomId as string, req.query.event_id);
        return { pdu_ids: state.map((e) => e.eventId), auth_chain_ids: authChain.map((e) => e.eventId) };
      },
    },
    {
      method: 'GET',
      url: '/_matrix/federation/v1/state/:roomId',
      schema: { querystring: query },
      handler: async (req) => {
        const { state, authChain } = await stateAt(reads, req.origin, req.params.roomId as string, req.query.event_id);
        return { pdus: await reads.pdus(state), auth_chain: await reads.pdus(authChain) };
      },
    },
  ];
}
