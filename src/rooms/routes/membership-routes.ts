import type { Context } from '../../context.js';
import type { Route } from '../../http/router.js';
import { mutualRooms } from '../mutual-rooms.js';

const reasonBody = { type: 'object', properties: { reason: { type: 'string' } } };
/**
 * A join's body: the reason, and the proof of a third-party invite (definitions/third_party_signed.yaml),
 * which has the invite it proves issued before the join (rooms/third-party-invite.ts, inviteByProof).
 */
const joinBody = {
  type: 'object',
  properties: {
    reason: { type: 'string' },
    third_party_signed: {
      type: 'object',
      required: ['sender', 'mxid', 'token', 'signatures'],
      properties: { sender: { type: 'string' }, mxid: { type: 'string' }, token: { type: 'string' }, signatures: { type: 'object' } },
    },
  },
};
/** `via` (and the older `server_name`): servers to join or knock on a room held elsewhere through; repeated in the query. */
const viaQuery = {
  type: 'object',
  properties: { via: { type: 'array', items: { type: 'string' } }, server_name: { type: 'array', items: { type: 'string' } } },
};
const targetBody = {
  type: 'object',
  required: ['user_id'],
  properties: { user_id: { type: 'string' }, reason: { type: 'string' } },
};

/** `/invite` takes a user id, or a third-party identifier and the identity server to look it up at. */
const inviteBody = {
  type: 'object',
  properties: {
    user_id: { type: 'string' },
    reason: { type: 'string' },
    id_server: { type: 'string' },
    id_access_token: { type: 'string' },
    medium: { type: 'string' },
    address: { type: 'string' },
  },
};

export function membershipRoutes(ctx: Context): Route[] {
  const rooms = ctx.services.rooms;
  return [
    {
      method: 'POST',
      path: '/join/:roomIdOrAlias',
      refusedWhenSuspended: true,
      guestAllowed: true,
      schema: { body: joinBody, querystring: viaQuery },
      handler: (req) => rooms.join(req.requester, req.params.roomIdOrAlias, req.body, [req.query.via ?? [], req.query.server_name ?? []].flat()),
    },
    {
      method: 'POST',
      path: '/rooms/:roomId/join',
      refusedWhenSuspended: true,
      guestAllowed: true,
      schema: { body: joinBody },
      handler: (req) => rooms.join(req.requester, req.params.roomId, req.body),
    },
    {
      method: 'POST',
      path: '/knock/:roomIdOrAlias',
      refusedWhenSuspended: true,
      schema: { body: reasonBody, querystring: viaQuery },
      handler: (req) => rooms.knock(req.requester, req.params.roomIdOrAlias, req.body, [req.query.via ?? [], req.query.server_name ?? []].flat()),
    },
    {
      method: 'GET',
      path: '/mutual_rooms',
      versions: ['v1'],
      handler: (req) => mutualRooms(rooms, req.requester.userId, req.query),
    },
    {
      method: 'POST',
      path: '/rooms/:roomId/leave',
      guestAllowed: true,
      schema: { body: reasonBody },
      handler: async (req) => {
        await ctx.services.serverNotices.refuseRejecting(req.requester.userId, req.params.roomId);
        return rooms.leave(req.requester, req.params.roomId, req.body);
      },
    },
    {
      method: 'POST',
      path: '/rooms/:roomId/forget',
      handler: (req) => rooms.forget(req.requester, req.params.roomId),
    },
    {
      method: 'POST',
      path: '/rooms/:roomId/invite',
      refusedWhenSuspended: true,
      schema: { body: inviteBody },
      handler: (req) => rooms.invite(req.requester, req.params.roomId, req.body),
    },
    {
      method: 'POST',
      path: '/rooms/:roomId/kick',
      schema: { body: targetBody },
      handler: (req) => rooms.kick(req.requester, req.params.roomId, req.body),
    },
    {
      method: 'POST',
      path: '/rooms/:roomId/ban',
      schema: { body: targetBody },
      handler: (req) => rooms.ban(req.requester, req.params.roomId, req.body),
    },
    {
      method: 'POST',
      path: '/rooms/:roomId/unban',
      schema: { body: targetBody },
      handler: (req) => rooms.unban(req.requester, req.params.roomId, req.body),
    },
    {
      method: 'GET',
      path: '/joined_rooms',
      handler: async (req) => ({ joined_rooms: await rooms.joinedRooms(req.requester.userId) }),
    },
    {
      method: 'GET',
      path: '/rooms/:roomId/members',
      guestAllowed: true,
      schema: {
        querystring: {
          type: 'object',
          properties: {
            at: { type: 'string' },
            membership: { enum: ['join', 'invite', 'knock', 'leave', 'ban'] },
            not_membership: { enum: ['join', 'invite', 'knock', 'leave', 'ban'] },
          },
        },
      },
      handler: async (req) => ({ chunk: await rooms.members(req.requester, req.params.roomId, req.query) }),
    },
    {
      method: 'GET',
      path: '/rooms/:roomId/joined_members',
      handler: async (req) => ({ joined: await rooms.joinedMembersOf(req.requester, req.params.roomId) }),
    },
  ];
}
