import type { Context } from '../context.js';
import type { Route } from '../http/router.js';

/** The path matrix-rust-sdk and Element X call (MSC4186 "Unstable prefix"). */
export const SLIDING_SYNC_FEATURE = 'org.matrix.simplified_msc3575';

export function slidingSyncRoutes(ctx: Context): Route[] {
  return [
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
