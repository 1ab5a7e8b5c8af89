import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { requestInfo } from './request-info.js';

const authDict = { type: 'object' };

export function registrationRoutes(ctx: Context): Route[] {
  const reg = () => ctx.services.accounts.registration;
  return [
    {
      method: 'POST',
      path: '/register',
      auth: 'none',
      rateLimit: 'registration',
      schema: {
        querystring: { type: 'object', properties: { kind: { type: 'string', enum: ['user', 'guest'] } } },
        body: {
          type: 'object',
          properties: {
            auth: authDict,
            username: { type: 'string' },
            password: { type: 'string' },
            device_id: { type: 'string' },
            initial_device_display_name: { type: 'string' },
            inhibit_login: { type: 'boolean' },
            refresh_token: { type: 'boolean' },
            guest_access_token: { type: 'string' },
          },
        },
      },
      handler: (req) => reg().register(req.body, req.query.kind ?? 'user', requestInfo(req)),
    },
    {
      method: 'GET',
      path: '/register/available',
      auth: 'none',
      // Not on the registration budget: clients check names as the user types, and that must not spend it.
      schema: { querystring: { type: 'object', required: ['username'], properties: { username: { type: 'string' } } } },
      handler: (req) => reg().available(req.query.username),
    },
    {
      method: 'GET',
      path: '/register/m.login.registration_token/validity',
      versions: ['v1'],
      auth: 'none',
      rateLimit: 'registration',
      schema: { querystring: { type: 'object', required: ['token'], properties: { token: { type: 'string' } } } },
      handler: (req) => reg().tokenValidity(req.query.token),
    },
  ];
}
