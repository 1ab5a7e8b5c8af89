import type { Context } from '../../context.js';
import type { Route } from '../../http/router.js';

const createRoomBody = {
  type: 'object',
  properties: {
    visibility: { enum: ['public', 'private'] },
    room_alias_name: { type: 'string' },
    name: { type: 'string' },
    topic: { type: 'string' },
    invite: { type: 'array', items: { type: 'string' } },
    invite_3pid: { type: 'array' },
    room_version: { type: 'string' },
    creation_content: { type: 'object' },
    initial_state: {
      type: 'array',
      items: {
        type: 'object',
        required: ['type', 'content'],
        properties: { type: { type: 'string' }, state_key: { type: 'string' }, content: { type: 'object' } },
      },
    },
    preset: { enum: ['private_chat', 'public_chat', 'trusted_private_chat'] },
    is_direct: { type: 'boolean' },
    power_level_content_override: { type: 'object' },
  },
};

export function createRoomRoutes(ctx: Context): Route[] {
  const rooms = ctx.services.rooms;
  return [
    {
      method: 'POST',
      path: '/createRoom',
      refusedWhenSuspended: true,
      schema: { body: createRoomBody },
      handler: (req) => rooms.createRoom(req.requester, req.body),
    },
  ];
}
