/** Deprecated client-server endpoints the spec still lists (old_sync.yaml, room_initial_sync.yaml, peeking_events.yaml). */
import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { eventStream, oneEvent } from './events.js';
import { initialSync, roomInitialSync } from './initial-sync.js';

export function legacyRoutes(ctx: Context): Route[] {
  return [
    { method: 'GET', path: '/initialSync', handler: (req) => initialSync(ctx, req.requester, req.query) },
    { method: 'GET', path: '/rooms/:roomId/initialSync', guestAllowed: true, handler: (req) => roomInitialSync(ctx, req.requester, req.params.roomId) },
    {
      method: 'GET',
      path: '/events',
      // Guests may read the stream "as used for room previews" (spec: modules/guest_access).
      guestAllowed: true,
      handler: (req, reply) => eventStream(ctx, req.requester, req.query, (fn) => reply.raw.once('close', fn)),
    },
    { method: 'GET', path: '/events/:eventId', handler: (req) => oneEvent(ctx, req.requester, req.params.eventId) },
  ];
}
