import type { Context } from '../context.js';
import { forbidden, notFound } from '../http/errors.js';
import type { Route } from '../http/router.js';
import { spaceHierarchy } from './hierarchy.js';
import { roomSummary } from './room-summary.js';
import { publicRoomsBodySchema, type PublicRoomsQuery } from './public-rooms.js';

export function directoryRoutes(ctx: Context): Route[] {
  const dir = ctx.services.directory;
  const rooms = ctx.services.rooms;

  return [
    {
      method: 'GET',
      path: '/rooms/:roomId/hierarchy',
      versions: ['v1'],
      handler: (req) => spaceHierarchy(ctx, req.requester.userId, req.params.roomId, req.query),
    },
    {
      method: 'GET',
      path: '/room_summary/:roomIdOrAlias',
      versions: ['v1'],
      auth: 'optional',
      guestAllowed: true,
      schema: { querystring: { type: 'object', properties: { via: { type: 'array', items: { type: 'string' } } } } },
      handler: (req) => roomSummary(ctx, req.requester?.userId, req.params.roomIdOrAlias, req.query.via ?? []),
    },
    {
      method: 'PUT',
      path: '/directory/room/:roomAlias',
      schema: { body: { type: 'object', required: ['room_id'], properties: { room_id: { type: 'string' } } } },
      handler: async (req) => {
        await dir.createAlias(req.params.roomAlias, req.body.room_id, req.requester.userId);
        return {};
      },
    },
    {
      method: 'GET',
      path: '/directory/room/:roomAlias',
      auth: 'optional',
      guestAllowed: true,
      handler: async (req) => {
        const res = await dir.resolveAlias(req.params.roomAlias);
        if (!res) throw notFound(`Room alias ${req.params.roomAlias} not found`);
        return { room_id: res.roomId, servers: res.servers };
      },
    },
    {
      method: 'DELETE',
      path: '/directory/room/:roomAlias',
      handler: async (req) => {
        await dir.deleteAlias(req.params.roomAlias, req.requester);
        return {};
      },
    },
    {
      method: 'GET',
      path: '/rooms/:roomId/aliases',
      handler: async (req) => {
        const roomId = req.params.roomId;
        if (!(await rooms.roomExists(roomId))) throw notFound(`Room ${roomId} is not known to this server`);
        if (!req.requester.isAdmin && !(await rooms.canSeeRoom(roomId, req.requester.userId))) {
          throw forbidden('You are not in this room');
        }
        return { aliases: await dir.getLocalAliases(roomId) };
      },
    },
    {
      method: 'GET',
      path: '/directory/list/room/:roomId',
      auth: 'none',
      handler: async (req) => {
        const roomId = req.params.roomId;
        if (!(await rooms.roomExists(roomId))) throw notFound(`Room ${roomId} is not known to this server`);
        return { visibility: await dir.getVisibility(roomId) };
      },
    },
    {
      method: 'PUT',
      path: '/directory/list/room/:roomId',
      schema: { body: { type: 'object', properties: { visibility: { enum: ['public', 'private'] } } } },
      handler: async (req) => {
        const roomId = req.params.roomId;
        if (!(await rooms.roomExists(roomId))) throw notFound(`Room ${roomId} is not known to this server`);
        // Publishing is a room admin's decision: whoever may change the room's canonical alias.
        if (!req.requester.isAdmin && !(await rooms.userCanSendState(roomId, req.requester.userId, 'm.room.canonical_alias'))) {
          throw forbidden('You may not change the directory visibility of this room');
        }
        await dir.setVisibility(roomId, req.body.visibility ?? 'public');
        return {};
      },
    },
    {
      method: 'GET',
      path: '/publicRooms',
      auth: 'optional',
      guestAllowed: true,
      schema: {
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 0 }, since: { type: 'string' }, server: { type: 'string' } },
        },
      },
      handler: async (req) => {
        return dir.listPublicRoomsOf(req.query.server, { limit: req.query.limit, since: req.query.since });
      },
    },
    {
      method: 'POST',
      path: '/publicRooms',
      schema: {
        querystring: { type: 'object', properties: { server: { type: 'string' } } },
        body: publicRoomsBodySchema({ type: 'integer' }),
      },
      handler: async (req) => {
        const q: PublicRoomsQuery = { limit: req.body.limit, since: req.body.since, filter: req.body.filter };
        return dir.listPublicRoomsOf(req.query.server, q);
      },
    },
  ];
}
