import type { Context } from '../../context.js';
import type { Route } from '../../http/router.js';

export function upgradeRoutes(ctx: Context): Route[] {
  const rooms = ctx.services.rooms;
  return [
    {
      method: 'POST',
      path: '/rooms/:roomId/upgrade',
      refusedWhenSuspended: true,
      schema: {
        body: {
          type: 'object',
          required: ['new_version'],
          properties: { new_version: { type: 'string' }, additional_creators: { type: 'array', items: { type: 'string' } } },
        },
      },
      handler: (req) => rooms.upgrade(req.requester, req.params.roomId, req.body),
    },
  ];
}
