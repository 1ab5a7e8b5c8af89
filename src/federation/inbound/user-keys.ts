/**
 * The end-to-end encryption endpoints other servers call (server-server user_devices.yaml,
 * user_keys.yaml): a local user's whole device list with its `stream_id`, their device and
 * cross-signing keys, and one-time keys claimed for their devices. Users of other servers are
 * not answered for.
 */
import { isValidUserId, serverNameOf } from '../../core/ids.js';
import type { JsonObject } from '../../core/types.js';
import { invalidParam, notFound } from '../../http/errors.js';
import type { FederationRoute } from '../router.js';

export interface UserKeysSources {
  serverName: string;
  userExists(userId: string): Promise<boolean>;
  userDevices(userId: string): Promise<JsonObject>;
  queryKeys(wanted: Record<string, string[]>): Promise<JsonObject>;
  claimKeys(wanted: Record<string, Record<string, string>>): Promise<JsonObject>;
}

export function userKeysRoutes(src: UserKeysSources): FederationRoute[] {
  return [
    {
      method: 'GET',
      url: '/_matrix/federation/v1/user/devices/:userId',
      handler: async (req) => {
        const userId = req.params.userId as string;
        if (!isValidUserId(userId, { historical: true })) throw invalidParam(`Invalid user id: ${userId}`);
        if (serverNameOf(userId) !== src.serverName) throw invalidParam(`${userId} is not a user of ${src.serverName}`);
        if (!(await src.userExists(userId))) throw notFound(`Unknown user ${userId}`);
        return src.userDevices(userId);
      },
    },
    {
      method: 'POST',
      url: '/_matrix/federation/v1/user/keys/query',
      schema: {
        body: {
          type: 'object',
          required: ['device_keys'],
          properties: { device_keys: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } } },
        },
      },
      handler: (req) => src.queryKeys(req.body.device_keys),
    },
    {
      method: 'POST',
      url: '/_matrix/federation/v1/user/keys/claim',
      schema: {
        body: {
          type: 'object',
          required: ['one_time_keys'],
          properties: { one_time_keys: { type: 'object', additionalProperties: { type: 'object', additionalProperties: { type: 'string' } } } },
        },
      },
      handler: (req) => src.claimKeys(req.body.one_time_keys),
    },
  ];
}
