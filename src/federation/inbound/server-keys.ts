/** `GET /_matrix/key/v2/server` and the notary's `/_matrix/key/v2/query` (keys_server.yaml, keys_query.yaml). */
import { isValidServerName } from '../../core/ids.js';
import type { KeyNotary } from '../keys/notary.js';
import type { OwnServerKeys } from '../keys/own-keys.js';
import type { FederationRoute } from '../router.js';

export function serverKeyRoutes(own: OwnServerKeys, notary: KeyNotary): FederationRoute[] {
  return [
    {
      method: 'GET',
      url: '/_matrix/key/v2/server',
      auth: 'none',
      handler: () => own.response(),
    },
    {
      // The key id path segment was deprecated in spec r0.1.x and removed later (keys_server.yaml:
      // "all keys are returned"); servers still ask for it (Synapse 1.67), and get every key.
      method: 'GET',
      url: '/_matrix/key/v2/server/:keyId',
      auth: 'none',
      handler: () => own.response(),
    },
    {
      method: 'GET',
      url: '/_matrix/key/v2/query/:serverName',
      auth: 'none',
      schema: { querystring: { type: 'object', properties: { minimum_valid_until_ts: { type: 'integer' } } } },
      handler: async (req) => {
        const server = req.params.serverName as string;
        if (!isValidServerName(server)) return { server_keys: [] };
        return { server_keys: await notary.query(new Map([[server, req.query.minimum_valid_until_ts as number | undefined]])) };
      },
    },
    {
      method: 'POST',
      url: '/_matrix/key/v2/query',
      auth: 'none',
      schema: {
        body: {
          type: 'object',
          required: ['server_keys'],
          properties: { server_keys: { type: 'object', additionalProperties: { type: 'object', additionalProperties: { type: 'object' } } } },
        },
      },
      handler: async (req) => {
        const wanted = new Map<string, number | undefined>();
        for (const [server, keys] of Object.entries(req.body.server_keys as Record<string, Record<string, { minimum_valid_until_ts?: unknown }>>)) {
          if (!isValidServerName(server)) continue;
          const mins = Object.values(keys).map((k) => k.minimum_valid_until_ts).filter((v): v is number => Number.isSafeInteger(v));
          wanted.set(server, mins.length > 0 ? Math.max(...mins) : undefined);
        }
        return { server_keys: await notary.query(wanted) };
      },
    },
  ];
}
