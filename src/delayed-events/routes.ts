import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { DELAYED_EVENTS_FEATURE, type DelayedAction } from './service.js';

const PREFIX = `/_matrix/client/unstable/${DELAYED_EVENTS_FEATURE}`;
const ACTION = { type: 'string', enum: ['cancel', 'restart', 'send'] };

/**
 * MSC4140's own endpoints (scheduling through /send and /state with the
 * `org.matrix.msc4140.delay` query parameter is hooked into those routes).
 * Scheduling counts as sending a message; managing and looking up have their
 * own `delayed_events` budget, per user or, unauthenticated, per address
 * (MSC4140 asks for rate limits on every one of them).
 */
export function delayedEventsRoutes(ctx: Context): Route[] {
  const service = () => ctx.services.delayedEvents;
  return [
    {
      method: 'PUT',
      prefix: PREFIX,
      versions: [],
      path: '/rooms/:roomId/delayed_event/:eventType/:txnId',
      rateLimit: 'message',
      schema: {
        body: {
          type: 'object',
          required: ['delay', 'content'],
          properties: { delay: { type: 'integer', minimum: 1 }, state_key: { type: 'string' }, content: { type: 'object' } },
        },
      },
      handler: (req) =>
        service().schedule(req.requester, {
          roomId: req.params.roomId,
          type: req.params.eventType,
          stateKey: req.body.state_key ?? null,
          content: req.body.content,
          delayMs: req.body.delay,
          txnId: `delayed_event:${req.params.txnId}`,
        }),
    },
    {
      // The earlier form, which matrix-js-sdk uses: the action in the body.
      method: 'POST',
      prefix: PREFIX,
      versions: [],
      path: '/delayed_events/:delayId',
      auth: 'optional',
      rateLimit: 'delayed_events',
      schema: { body: { type: 'object', required: ['action'], properties: { action: ACTION } } },
      handler: (req) => service().update(req.params.delayId, req.body.action as DelayedAction, req.requester ?? null),
    },
    {
      method: 'POST',
      prefix: PREFIX,
      versions: [],
      path: '/delayed_events/:delayId/:action',
      auth: 'none',
      rateLimit: 'delayed_events',
      schema: { params: { type: 'object', properties: { delayId: { type: 'string' }, action: ACTION } } },
      handler: (req) => service().update(req.params.delayId, req.params.action as DelayedAction, null),
    },
    {
      method: 'GET',
      prefix: PREFIX,
      versions: [],
      path: '/delayed_events',
      rateLimit: 'delayed_events',
      schema: { querystring: { type: 'object', properties: { status: { type: 'string' } } } },
      handler: (req) => service().list(req.requester, req.query.status),
    },
    {
      method: 'GET',
      prefix: PREFIX,
      versions: [],
      path: '/delayed_events/:delayId',
      rateLimit: 'delayed_events',
      handler: (req) => service().get(req.requester, req.params.delayId),
    },
  ];
}
