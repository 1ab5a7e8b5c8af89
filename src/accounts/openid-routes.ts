import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { requestOpenIdToken } from './openid.js';

export function openIdRoutes(ctx: Context): Route[] {
  return [
    {
      method: 'POST',
      path: '/user/:userId/openid/request_token',
      schema: { body: { type: 'object' } },
      handler: (req) => requestOpenIdToken(ctx, req.requester, req.params.userId),
    },
  ];
}
