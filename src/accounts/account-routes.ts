import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { requestInfo } from './request-info.js';

const authDict = { type: 'object' };

export function accountRoutes(ctx: Context): Route[] {
  const account = () => ctx.services.accounts.account;
  return [
    {
      method: 'POST',
      path: '/account/password',
      // Without an access token: a password reset proven by email (m.login.email.identity).
      auth: 'optional',
      schema: {
        body: {
          type: 'object',
          required: ['new_password'],
          properties: { new_password: { type: 'string' }, logout_devices: { type: 'boolean' }, auth: authDict },
        },
      },
      handler: (req) => account().changePassword(req.requester, req.body, requestInfo(req)),
    },
    {
      method: 'POST',
      path: '/account/deactivate',
      schema: {
        body: { type: 'object', properties: { auth: authDict, id_server: { type: 'string' }, erase: { type: 'boolean' } } },
      },
      handler: (req) => account().deactivate(req.requester, req.body, requestInfo(req)),
    },
  ];
}
