import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { getThreadUpdates } from './thread-updates.js';

/** The path matrix-rust-sdk and Element X call (MSC4186 "Unstable prefix"). */
export const SLIDING_SYNC_FEATURE = 'org.matrix.simplified_msc3575';

/** MSC4360's unstable prefix for its `/thread_updates` endpoint. */
export const THREADS_FEATURE = 'io.element.msc4360';

const threadUpdatesQuery = {
  type: 'object',
  properties: { dir: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, limit: { type: 'integer' } },
};

export function slidingSyncRoutes(ctx: Context): Route[] {
  const threadUpdates: Route['handler'] = (req) =>
    getThreadUpdates(ctx, req.requester, { dir: req.query.dir, from: req.query.from, to: req.query.to, limit: req.query.limit });
  return [
    // MSC4360's companion endpoint, at its unstable path and the stable one it names.
    { method: 'GET', path: `/${THREADS_FEATURE}/thread_updates`, versions: ['unstable'], schema: { querystring: threadUpdatesQuery }, handler: threadUpdates },
    { method: 'GET', path: '/thread_updates', versions: ['v1'], schema: { querystring: threadUpdatesQuery }, handler: threadUpdates },
    {
      method: 'POST',
      path: `/${SLIDING_SYNC_FEATURE}/sync`,
      versions: ['unstable'],
      schema: {
        body: { type: 'object' },
        querystring: {
          type: 'object',
          properties: {
            pos: { type: 'string' },
            timeout: { type: 'integer', minimum: 0 },
            conn_id: { type: 'string' },
            set_presence: { type: 'string' },
          },
        },
      },
      handler: (req, reply) =>
        ctx.services.slidingSync.sync(req.requester, req.body ?? {}, req.query ?? {}, (fn) => {
          reply.raw.once('close', fn);
        }),
    },
  ];
}
