import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { badJson, invalidParam, missingParam } from '../http/errors.js';
import { dehydratedDeviceRoutes } from './dehydrated-device.js';
import { keysTimeout } from './federated-keys.js';
import { keyBackupRoutes } from './key-backup-routes.js';
import { parseSyncTokenPositions } from './sync-token.js';

const object = { type: 'object' };

export function e2eeRoutes(ctx: Context): Route[] {
  const e2ee = () => ctx.services.e2ee;
  return [
    ...keyBackupRoutes(ctx),
    ...dehydratedDeviceRoutes(ctx),
    {
      method: 'POST',
      path: '/keys/upload',
      guestAllowed: true,
      schema: {
        body: {
          type: 'object',
          properties: { device_keys: object, one_time_keys: object, fallback_keys: object },
        },
      },
      handler: (req) => e2ee().uploadKeys(req.requester, req.body),
    },
    {
      method: 'POST',
      path: '/keys/query',
      guestAllowed: true,
      schema: {
        body: {
          type: 'object',
          required: ['device_keys'],
          properties: {
            timeout: { type: 'integer' },
            device_keys: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
          },
        },
      },
      handler: (req) => e2ee().queryKeys(req.requester, req.body.device_keys, keysTimeout(req.body.timeout)),
    },
    {
      method: 'POST',
      path: '/keys/claim',
      guestAllowed: true,
      schema: {
        body: {
          type: 'object',
          required: ['one_time_keys'],
          properties: {
            timeout: { type: 'integer' },
            one_time_keys: { type: 'object', additionalProperties: { type: 'object', additionalProperties: { type: 'string' } } },
          },
        },
      },
      handler: (req) => e2ee().claimKeys(req.requester, req.body.one_time_keys, keysTimeout(req.body.timeout)),
    },
    {
      method: 'GET',
      path: '/keys/changes',
      schema: { querystring: { type: 'object', properties: { from: { type: 'string' }, to: { type: 'string' } } } },
      handler: async (req) => {
        if (typeof req.query.from !== 'string') throw missingParam('from is required');
        if (typeof req.query.to !== 'string') throw missingParam('to is required');
        const from = parseSyncTokenPositions(req.query.from);
        const to = parseSyncTokenPositions(req.query.to);
        if (!from) throw invalidParam('from is not a sync token');
        if (!to) throw invalidParam('to is not a sync token');
        return e2ee().getKeyChanges(req.requester.userId, from, to);
      },
    },
    {
      method: 'PUT',
      path: '/sendToDevice/:eventType/:txnId',
      guestAllowed: true,
      rateLimit: 'message',
      schema: { body: { type: 'object', required: ['messages'], properties: { messages: object } } },
      handler: async (req) => {
        await e2ee().sendToDevice(req.requester, req.params.eventType, req.params.txnId, req.body.messages);
        return {};
      },
    },
    {
      method: 'POST',
      path: '/keys/device_signing/upload',
      versions: ['v3', 'unstable'],
      schema: {
        body: {
          type: 'object',
          properties: { master_key: object, self_signing_key: object, user_signing_key: object, auth: object },
        },
      },
      handler: async (req) => {
        await e2ee().uploadCrossSigningKeys(req.requester, req.body, { method: req.method, path: req.url.split('?')[0] });
        return {};
      },
    },
    {
      method: 'POST',
      path: '/keys/signatures/upload',
      versions: ['v3', 'unstable'],
      handler: (req) => {
        for (const v of Object.values(req.body as object)) {
          if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badJson('Expected a map of user id to key id to signed object');
        }
        return e2ee().uploadSignatures(req.requester, req.body);
      },
    },
  ];
}
