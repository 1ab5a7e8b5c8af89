import type { Context } from '../context.js';
import { invalidParam } from '../http/errors.js';
import type { Route } from '../http/router.js';
import { changesToken, THREAD_SUBSCRIPTIONS_FEATURE, ThreadSubscriptions } from './service.js';

const PREFIX = `/_matrix/client/unstable/${THREAD_SUBSCRIPTIONS_FEATURE}`;
/** MSC4308's companion endpoint: paging back through changes a sync response left out. */
const CHANGES_PREFIX = '/_matrix/client/unstable/io.element.msc4308';
const PATH = '/rooms/:roomId/thread/:eventId/subscription';
const MAX_LIMIT = 100;

function parseToken(t: string): { before: number; after: number } {
  const m = /^tsub_(\d{1,15})_(\d{1,15})$/.exec(t);
  if (!m) throw invalidParam('from is not a token this server gave');
  return { before: Number(m[1]), after: Number(m[2]) };
}

export function threadSubscriptionRoutes(ctx: Context): Route[] {
  const subs = new ThreadSubscriptions(ctx);
  return [
    {
      method: 'PUT',
      prefix: PREFIX,
      versions: [],
      path: PATH,
      rateLimit: 'message',
      // The current form names the causing event; an earlier one sent a boolean.
      schema: { body: { type: 'object', properties: { automatic: { type: ['string', 'boolean'] } } } },
      handler: (req) => {
        const a = req.body.automatic as string | boolean | undefined;
        return subs.subscribe(req.requester, req.params.roomId, req.params.eventId, a === true ? req.params.eventId : typeof a === 'string' ? a : undefined);
      },
    },
    {
      method: 'DELETE',
      prefix: PREFIX,
      versions: [],
      path: PATH,
      handler: (req) => subs.unsubscribe(req.requester, req.params.roomId, req.params.eventId),
    },
    {
      method: 'GET',
      prefix: PREFIX,
      versions: [],
      path: PATH,
      handler: (req) => subs.get(req.requester, req.params.roomId, req.params.eventId),
    },
    {
      method: 'GET',
      prefix: CHANGES_PREFIX,
      versions: [],
      path: '/thread_subscriptions',
      schema: {
        querystring: {
          type: 'object',
          properties: { dir: { type: 'string', enum: ['b'] }, from: { type: 'string' }, to: { type: 'string' }, limit: { type: 'integer', minimum: 1 } },
        },
      },
      handler: async (req) => {
        const userId = req.requester.userId;
        // The lower bound travels in the token; without one, paging starts at the latest change.
        const range = req.query.from !== undefined ? parseToken(req.query.from) : { before: (await subs.latestPos(userId)) + 1, after: 0 };
        const limit = Math.min(req.query.limit ?? MAX_LIMIT, MAX_LIMIT);
        const page = await subs.changes(userId, range.after, range.before - 1, limit);
        const body: Record<string, unknown> = { subscribed: page.subscribed, unsubscribed: page.unsubscribed };
        if (page.olderThan !== null) body.end = changesToken(page.olderThan, range.after);
        return body;
      },
    },
  ];
}
