import type { Context } from '../../context.js';
import type { Route } from '../../http/router.js';
import { parseRoomEventFilter } from '../event-filter.js';
import { parseDir } from '../timeline.js';

const anyObject = { type: 'object' };

export function eventRoutes(ctx: Context): Route[] {
  const rooms = ctx.services.rooms;
  // MSC4140: with `org.matrix.msc4140.delay` in the query, the event is scheduled instead of sent.
  const delayOf = (query: Record<string, unknown>) => ctx.services.delayedEvents.delayFromQuery(query);
  const putState: Route['handler'] = (req) => {
    const delayMs = delayOf(req.query);
    if (delayMs !== null) {
      return ctx.services.delayedEvents.schedule(req.requester, {
        roomId: req.params.roomId,
        type: req.params.eventType,
        stateKey: req.params.stateKey ?? '',
        content: req.body,
        delayMs,
        txnId: null,
      });
    }
    return rooms.sendState(req.requester, req.params.roomId, req.params.eventType, req.params.stateKey ?? '', req.body);
  };
  const getState: Route['handler'] = (req) =>
    rooms.stateEvent(req.requester, req.params.roomId, req.params.eventType, req.params.stateKey ?? '', req.query.format === 'event' ? 'event' : 'content');
  const stateQuery = { type: 'object', properties: { format: { enum: ['content', 'event'] } } };
  return [
    {
      method: 'PUT',
      path: '/rooms/:roomId/send/:eventType/:txnId',
      // A suspended user may still redact their own events (the redact endpoint checks whose).
      refusedWhenSuspended: (req) => req.params.eventType !== 'm.room.redaction',
      guestAllowed: true,
      rateLimit: 'message',
      schema: { body: anyObject },
      handler: (req) => {
        const delayMs = delayOf(req.query);
        if (delayMs !== null) {
          return ctx.services.delayedEvents.schedule(req.requester, {
            roomId: req.params.roomId,
            type: req.params.eventType,
            stateKey: null,
            content: req.body,
            delayMs,
            txnId: req.params.txnId,
          });
        }
        return rooms.sendMessage(req.requester, req.params.roomId, req.params.eventType, req.params.txnId, req.body);
      },
    },
    { method: 'PUT', path: '/rooms/:roomId/state/:eventType', guestAllowed: true, refusedWhenSuspended: true, schema: { body: anyObject }, handler: putState },
    { method: 'PUT', path: '/rooms/:roomId/state/:eventType/:stateKey', guestAllowed: true, refusedWhenSuspended: true, schema: { body: anyObject }, handler: putState },
    { method: 'GET', path: '/rooms/:roomId/state/:eventType', guestAllowed: true, schema: { querystring: stateQuery }, handler: getState },
    { method: 'GET', path: '/rooms/:roomId/state/:eventType/:stateKey', guestAllowed: true, schema: { querystring: stateQuery }, handler: getState },
    {
      method: 'GET',
      path: '/rooms/:roomId/state',
      guestAllowed: true,
      handler: (req) => rooms.roomState(req.requester, req.params.roomId),
    },
    {
      method: 'GET',
      path: '/rooms/:roomId/timestamp_to_event',
      versions: ['v1'],
      handler: (req) => rooms.eventNearTimestamp(req.requester, req.params.roomId, req.query),
    },
    {
      method: 'PUT',
      path: '/rooms/:roomId/redact/:eventId/:txnId',
      rateLimit: 'message',
      schema: { body: { type: 'object', properties: { reason: { type: 'string' } } } },
      handler: (req) => rooms.redact(req.requester, req.params.roomId, req.params.eventId, req.params.txnId, req.body),
    },
    {
      method: 'GET',
      path: '/rooms/:roomId/event/:eventId',
      guestAllowed: true,
      handler: (req) => rooms.event(req.requester, req.params.roomId, req.params.eventId),
    },
    {
      method: 'GET',
      path: '/rooms/:roomId/context/:eventId',
      guestAllowed: true,
      schema: {
        querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 0 }, filter: { type: 'string' } } },
      },
      handler: (req) =>
        rooms.context(req.requester, req.params.roomId, req.params.eventId, req.query.limit, parseRoomEventFilter(req.query.filter)),
    },
    {
      method: 'GET',
      path: '/rooms/:roomId/messages',
      guestAllowed: true,
      schema: {
        querystring: {
          type: 'object',
          properties: {
            from: { type: 'string' },
            to: { type: 'string' },
            dir: { type: 'string' },
            limit: { type: 'integer', minimum: 0 },
            filter: { type: 'string' },
          },
        },
      },
      handler: (req) =>
        rooms.messages(req.requester, req.params.roomId, {
          dir: parseDir(req.query.dir),
          from: req.query.from,
          to: req.query.to,
          limit: req.query.limit,
          filter: parseRoomEventFilter(req.query.filter),
        }),
    },
  ];
}
