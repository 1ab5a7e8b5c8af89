/**
 * `GET /_matrix/federation/v1/backfill/{roomId}?v=...&limit=` (backfill.yaml): events before and
 * including the `v` events, deepest first, to a server in the room; events it may not see are
 * left out.
 */
import { forbidden, missingParam, notFound } from '../../http/errors.js';
import type { RoomReads } from '../room-reads.js';
import type { FederationRoute } from '../router.js';

const MAX_LIMIT = 100;

export function backfillRoute(reads: RoomReads, serverName: string, now: () => number): FederationRoute {
  return {
    method: 'GET',
    url: '/_matrix/federation/v1/backfill/:roomId',
    schema: {
      querystring: {
        type: 'object',
        properties: { v: { type: 'array', items: { type: 'string' } }, limit: { type: 'integer', minimum: 0 } },
      },
    },
    handler: async (req) => {
      const roomId = req.params.roomId as string;
      const from = (req.query.v ?? []) as string[];
      if (from.length === 0) throw missingParam('v is required');
      if (req.query.limit === undefined) throw missingParam('limit is required');
      const limit = Math.min(req.query.limit as number, MAX_LIMIT);
      if (!(await reads.serverInRoom(req.origin, roomId))) {
        // A server that is not in the room learns no more than whether it exists.
        throw forbidden('Your server is not in this room');
      }
      const events = await reads.backfill(req.origin, roomId, from, limit);
      if (events.length === 0 && !(await reads.event(from[0]!, roomId))) throw notFound('Event not found in this room');
      return { origin: serverName, origin_server_ts: now(), pdus: await reads.pdus(events) };
    },
  };
}
