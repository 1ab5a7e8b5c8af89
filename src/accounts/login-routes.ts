import type { Context } from '../context.js';
import type { Route } from '../http/router.js';

export function loginRoutes(ctx: Context): Route[] {
  const accounts = () => ctx.services.accounts;
  return [
    {
      method: 'GET',
      path: '/login',
      auth: 'none',
      handler: () => accounts().login.flows(),
    },
    {
      method: 'POST',
      path: '/login',
      auth: 'none',
      rateLimit: 'login',
      schema: {
        body: {
          type: 'object',
          required: ['type'],
          properties: {
            type: { type: 'string' },
            identifier: { type: 'object', required: ['type'], properties: { type: { type: 'string' } } },
            user: { type: 'string' },
            medium: { type: 'string' },
            address: { type: 'string' },
            password: { type: 'string' },
            token: { type: 'string' },
            device_id: { type: 'string' },
            initial_device_display_name: { type: 'string' },
            refresh_token: { type: 'boolean' },
          },
        },
      },
      handler: (req) => accounts().login.login(req.body, req.ip),
    },
    {
      method: 'POST',
      path: '/refresh',
      versions: ['v3', 'v1'],
      auth: 'none',
      schema: { body: { type: 'object', required: ['refresh_token'], properties: { refresh_token: { type: 'string' } } } },
      handler: async (req) => {
        const t = await accounts().sessions.refresh(req.body.refresh_token);
        return { access_token: t.accessToken, refresh_token: t.refreshToken, expires_in_ms: t.expiresInMs };
      },
    },
    {
      method: 'POST',
      path: '/logout',
      handler: async (req) => {
        await accounts().sessions.deleteDevices(req.requester.userId, [req.requester.deviceId]);
        return {};
      },
    },
    {
      method: 'POST',
      path: '/logout/all',
      handler: async (req) => {
        await accounts().sessions.deleteDevices(req.requester.userId, undefined);
        return {};
      },
    },
    {
      method: 'GET',
      path: '/account/whoami',
      guestAllowed: true,
      handler: (req) => ({ user_id: req.requester.userId, device_id: req.requester.deviceId, is_guest: req.requester.isGuest === true }),
    },
  ];
}
