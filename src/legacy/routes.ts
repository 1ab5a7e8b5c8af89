/**
 * Deprecated client-server endpoints the spec still lists (old_sync.yaml, room_initial_sync.yaml,
 * peeking_events.yaml), and the send without a transaction id that older clients and bots use.
 */
import { randomBytes } from 'node:crypto';
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
    {
      // The r0 send without a transaction id: every request is a new event, so a retry sends twice.
      method: 'POST',
      path: '/rooms/:roomId/send/:eventType',
      refusedWhenSuspended: (req) => req.params.eventType !== 'm.room.redaction',
      rateLimit: 'message',
      schema: { body: { type: 'object' } },
      handler: (req) =>
        ctx.services.rooms.sendMessage(req.requester, req.params.roomId, req.params.eventType, `post-${randomBytes(12).toString('base64url')}`, req.body),
    },
  ];
}
