/** `GET /_matrix/federation/v1/event/{eventId}` (events.yaml): one event, to a server allowed to see it. */
import { forbidden, notFound } from '../../http/errors.js';
import type { RoomReads } from '../room-reads.js';
import type { FederationRoute } from '../router.js';

export function getEventRoute(reads: RoomReads, serverName: string, now: () => number): FederationRoute {
  return {
    method: 'GET',
    url: '/_matrix/federation/v1/event/:eventId',
    handler: async (req) => {
      const ev = await reads.event(req.params.eventId as string);
      if (!ev) throw notFound('Event not found');
      if (!(await reads.visibleTo(req.origin, ev))) throw forbidden('Your server may not see this event');
      return { origin: serverName, origin_server_ts: now(), pdus: [await reads.pdu(ev)] };
    },
  };
}
