/**
 * `GET /_matrix/federation/v1/hierarchy/{roomId}` (server-server space_hierarchy.yaml): a space
 * and its direct children as the requesting server's users could see them (the directory
 * domain's federationHierarchy); M_NOT_FOUND for a space unknown here or not visible to it.
 */
import { notFound, invalidParam } from '../../http/errors.js';
import type { FederationRoute } from '../router.js';
import type { JsonObject } from '../../core/types.js';

export function hierarchyRoute(hierarchy: (origin: string, roomId: string, suggestedOnly: boolean) => Promise<JsonObject | null>): FederationRoute {
  return {
    method: 'GET',
    url: '/_matrix/federation/v1/hierarchy/:roomId',
    schema: { querystring: { type: 'object', properties: { suggested_only: { type: 'string' } } } },
    handler: async (req) => {
      const raw = req.query.suggested_only as string | undefined;
      if (raw !== undefined && raw !== 'true' && raw !== 'false') throw invalidParam('suggested_only must be true or false');
      const out = await hierarchy(req.origin, req.params.roomId as string, raw === 'true');
      if (!out) throw notFound('Unknown room, or not visible to your server');
      return out;
    },
  };
}
