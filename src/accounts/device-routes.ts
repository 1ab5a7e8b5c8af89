import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { requestInfo } from './request-info.js';

const authDict = { type: 'object' };

export function deviceRoutes(ctx: Context): Route[] {
  const devices = () => ctx.services.accounts.devices;
  return [
    { method: 'GET', path: '/devices', guestAllowed: true, handler: (req) => devices().list(req.requester) },
    { method: 'GET', path: '/devices/:deviceId', guestAllowed: true, handler: (req) => devices().get(req.requester, req.params.deviceId) },
    {
      method: 'PUT',
      path: '/devices/:deviceId',
      guestAllowed: true,
      schema: { body: { type: 'object', properties: { display_name: { type: 'string' } } } },
      handler: (req) => devices().update(req.requester, req.params.deviceId, req.body),
    },
    {
      method: 'DELETE',
      path: '/devices/:deviceId',
      // No body schema: a DELETE often comes without a body, and user-interactive auth checks `auth` itself.
      handler: (req) => devices().delete(req.requester, [req.params.deviceId], req.body ?? {}, requestInfo(req)),
    },
    {
      method: 'POST',
      path: '/delete_devices',
      schema: {
        body: {
          type: 'object',
          required: ['devices'],
          properties: { devices: { type: 'array', items: { type: 'string' } }, auth: authDict },
        },
      },
      handler: (req) => devices().delete(req.requester, req.body.devices, req.body, requestInfo(req)),
    },
  ];
}
