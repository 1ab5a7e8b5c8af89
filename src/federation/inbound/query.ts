/**
 * `GET /_matrix/federation/v1/query/directory` and `/query/profile` (server-server query.yaml):
 * another server resolves an alias of this server, or reads a profile of a user of this server.
 */
import { isValidRoomAlias, isValidUserId, serverNameOf } from '../../core/ids.js';
import { invalidParam, missingParam, notFound } from '../../http/errors.js';
import type { FederationRoute } from '../router.js';

export interface QuerySources {
  serverName: string;
  /** A local alias's room and the servers that can join it; null when unknown. */
  resolveAlias(alias: string): Promise<{ roomId: string; servers: string[] } | null>;
  /** Every field of a local user's profile; throws M_NOT_FOUND for an unknown user. */
  profile(userId: string): Promise<Record<string, unknown>>;
}

export function queryRoutes(src: QuerySources): FederationRoute[] {
  return [
    {
      method: 'GET',
      url: '/_matrix/federation/v1/query/directory',
      schema: { querystring: { type: 'object', properties: { room_alias: { type: 'string' } } } },
      handler: async (req) => {
        const alias = req.query.room_alias as string | undefined;
        if (alias === undefined) throw missingParam('room_alias is required');
        if (!isValidRoomAlias(alias)) throw invalidParam(`Invalid room alias: ${alias}`);
        const found = serverNameOf(alias) === src.serverName ? await src.resolveAlias(alias) : null;
        if (!found) throw notFound(`Room alias ${alias} not found`);
        return { room_id: found.roomId, servers: found.servers };
      },
    },
    {
      method: 'GET',
      url: '/_matrix/federation/v1/query/profile',
      schema: { querystring: { type: 'object', properties: { user_id: { type: 'string' }, field: { type: 'string' } } } },
      handler: async (req) => {
        const userId = req.query.user_id as string | undefined;
        const field = req.query.field as string | undefined;
        if (userId === undefined) throw missingParam('user_id is required');
        if (!isValidUserId(userId, { historical: true })) throw invalidParam(`Invalid user id: ${userId}`);
        if (serverNameOf(userId) !== src.serverName) throw invalidParam(`${userId} is not a user of ${src.serverName}`);
        const all = await src.profile(userId);
        if (field === undefined) return all;
        return Object.hasOwn(all, field) ? { [field]: all[field] } : {};
      },
    },
  ];
}
