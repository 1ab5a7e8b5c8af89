/**
 * `GET /_matrix/federation/v1/timestamp_to_event/{roomId}?ts=&dir=` (events.yaml): the event
 * nearest a timestamp in one direction, among those the asking server may see, to a server in
 * the room; 404 when there is none.
 */
import { forbidden, notFound } from '../../http/errors.js';
import { nearestEvent, parseTimestampQuery } from '../../rooms/timestamp-to-event.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import type { RoomReads } from '../room-reads.js';
import type { FederationRoute } from '../router.js';

export function timestampToEventRoute(core: RoomsCore, reads: RoomReads): FederationRoute {
  return {
    method: 'GET',
    url: '/_matrix/federation/v1/timestamp_to_event/:roomId',
    schema: { querystring: { type: 'object', properties: { ts: { type: 'string' }, dir: { type: 'string' } } } },
    handler: async (req) => {
      const roomId = req.params.roomId as string;
      const { ts, dir } = parseTimestampQuery(req.query as { ts?: unknown; dir?: unknown });
      // A server that is not in the room learns no more than whether it exists.
      if (!(await reads.serverInRoom(req.origin, roomId))) throw forbidden('Your server is not in this room');
      const groups = new Map<number, Promise<boolean>>();
      const { found } = await nearestEvent(core, roomId, ts, dir, async (events) => {
        const shown = await Promise.all(events.map((ev) => reads.visibleTo(req.origin, ev, groups)));
        return events.filter((_, i) => shown[i]);
      });
      if (!found) throw notFound('No event was found in that direction');
      return { event_id: found.eventId, origin_server_ts: found.pdu.origin_server_ts };
    },
  };
}
