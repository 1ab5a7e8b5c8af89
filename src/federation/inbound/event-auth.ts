/** `GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}` (event_auth.yaml): the event's full auth chain. */
import { forbidden, notFound } from '../../http/errors.js';
import type { RoomReads } from '../room-reads.js';
import type { FederationRoute } from '../router.js';

export function eventAuthRoute(reads: RoomReads): FederationRoute {
  return {
    method: 'GET',
    url: '/_matrix/federation/v1/event_auth/:roomId/:eventId',
    handler: async (req) => {
      const ev = await reads.event(req.params.eventId as string, req.params.roomId as string);
      if (!ev) throw notFound('Event not found in this room');
      if (!(await reads.visibleTo(req.origin, ev))) throw forbidden('Your server may not see this event');
      return { auth_chain: await reads.pdus(await reads.authChain([ev])) };
    },
  };
}
