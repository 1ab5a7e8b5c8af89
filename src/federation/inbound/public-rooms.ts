/**
 * `GET` and `POST /_matrix/federation/v1/publicRooms` (server-server public_rooms.yaml): this
 * server's published room directory, for another server's users. Third-party networks are not
 * bridged here, so `include_all_networks` and `third_party_instance_id` change nothing.
 */
import { publicRoomsBodySchema, type PublicRoomsQuery, type PublicRoomsResponse } from '../../directory/public-rooms.js';
import { invalidParam } from '../../http/errors.js';
import type { FederationRoute } from '../router.js';

export function publicRoomsRoutes(list: (q: PublicRoomsQuery) => Promise<PublicRoomsResponse>): FederationRoute[] {
  return [
    {
      method: 'GET',
      url: '/_matrix/federation/v1/publicRooms',
      schema: {
        querystring: {
          type: 'object',
          properties: { limit: { type: 'string' }, since: { type: 'string' }, include_all_networks: { type: 'string' }, third_party_instance_id: { type: 'string' } },
        },
      },
      handler: async (req) => {
        const raw = req.query.limit as string | undefined;
        let limit: number | undefined;
        if (raw !== undefined) {
          if (!/^\d{1,9}$/.test(raw)) throw invalidParam('limit must be a non-negative integer');
          limit = Number(raw);
        }
        return list({ limit, since: req.query.since as string | undefined });
      },
    },
    {
      method: 'POST',
      url: '/_matrix/federation/v1/publicRooms',
      schema: {
        body: publicRoomsBodySchema({ type: 'integer', minimum: 0 }),
      },
      handler: async (req) => list({ limit: req.body.limit, since: req.body.since, filter: req.body.filter }),
    },
  ];
}
