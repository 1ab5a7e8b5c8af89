/** `POST /_matrix/federation/v1/get_missing_events/{roomId}` (backfill.yaml): earlier events a server lacks. */
import type { RoomReads } from '../room-reads.js';
import type { FederationRoute } from '../router.js';

const MAX_LIMIT = 100;

export function getMissingEventsRoute(reads: RoomReads): FederationRoute {
  return {
    method: 'POST',
    url: '/_matrix/federation/v1/get_missing_events/:roomId',
    schema: {
      body: {
        type: 'object',
        required: ['earliest_events', 'latest_events'],
        properties: {
          limit: { type: 'integer', minimum: 0 },
          min_depth: { type: 'integer' },
          earliest_events: { type: 'array', items: { type: 'string' } },
          latest_events: { type: 'array', items: { type: 'string' }, maxItems: 50 },
        },
      },
    },
    handler: async (req) => {
      const roomId = req.params.roomId as string;
      // Each event is served only to a server allowed to see it (room-reads.ts).
      const limit = Math.min(MAX_LIMIT, (req.body.limit as number | undefined) ?? 10);
      const events = await reads.missingEvents(req.origin, roomId, req.body.earliest_events, req.body.latest_events, limit, (req.body.min_depth as number | undefined) ?? 0);
      return { events: await reads.pdus(events) };
    },
  };
}
