import type { Context } from '../context.js';
import { missingParam, notFound } from '../http/errors.js';
import type { Route } from '../http/router.js';
import { requestInfo } from './request-info.js';

/** No single sign-on provider is configured: `GET /login` offers no `m.login.sso` flow, and a redirect has nowhere to go. */
const noSso = (query: { redirectUrl?: unknown }, idpId?: string) => {
  if (typeof query.redirectUrl !== 'string' || query.redirectUrl === '') throw missingParam('Missing the redirectUrl query parameter');
  throw notFound(idpId === undefined ? 'No single sign-on provider is configured' : `Unknown identity provider ${idpId}`);
};

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
      path: '/login/get_token',
      versions: ['v1'],
      // Stricter than other endpoints, as the spec asks: it spends the login budget.
      rateLimit: 'login',
      schema: { body: { type: 'object', properties: { auth: { type: 'object' } } } },
      handler: (req) => accounts().loginTokens.generate(req.requester, req.body, requestInfo(req)),
    },
    {
      method: 'GET',
      path: '/login/sso/redirect',
      auth: 'none',
      handler: (req) => noSso(req.query),
    },
    {
      method: 'GET',
      path: '/login/sso/redirect/:idpId',
      auth: 'none',
      handler: (req) => noSso(req.query, req.params.idpId),
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
      allowLocked: true,
      handler: async (req) => {
        await accounts().sessions.deleteDevices(req.requester.userId, [req.requester.deviceId]);
        return {};
      },
    },
    {
      method: 'POST',
      path: '/logout/all',
      allowLocked: true,
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
