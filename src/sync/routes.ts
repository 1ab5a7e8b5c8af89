import { Readable } from 'node:stream';
import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { FILTER_SCHEMA } from './filter-rules.js';

const presenceEnum = { type: 'string', enum: ['online', 'offline', 'unavailable'] };

export function syncRoutes(ctx: Context): Route[] {
  const sync = () => ctx.services.sync;
  return [
    // ---- /sync (spec: "Syncing") ----
    {
      method: 'GET',
      path: '/sync',
      guestAllowed: true,
      schema: {
        querystring: {
          type: 'object',
          properties: {
            since: { type: 'string' },
            filter: { type: 'string' },
            timeout: { type: 'integer' },
            full_state: { type: 'boolean' },
            set_presence: presenceEnum,
            use_state_after: { type: 'boolean' },
          },
        },
      },
      handler: async (req, reply) => {
        const answer = await sync().sync(req.requester, req.query, (fn) => {
          // The response's close fires on completion and when the client goes away.
          reply.raw.once('close', fn);
        });
        // A streamed answer is JSON text as well (sent chunked, without a length).
        if (answer instanceof Readable) reply.type('application/json; charset=utf-8');
        return answer;
      },
    },

    // ---- filters (spec: "Filtering") ----
    {
      method: 'POST',
      path: '/user/:userId/filter',
      schema: { body: FILTER_SCHEMA },
      handler: async (req) => ({ filter_id: await sync().createFilter(req.requester, req.params.userId, req.body) }),
    },
    {
      method: 'GET',
      path: '/user/:userId/filter/:filterId',
      handler: (req) => sync().getFilter(req.requester, req.params.userId, req.params.filterId),
    },

    // ---- typing (spec: "Typing Notifications") ----
    {
      method: 'PUT',
      path: '/rooms/:roomId/typing/:userId',
      schema: {
        body: {
          type: 'object',
          required: ['typing'],
          properties: { typing: { type: 'boolean' }, timeout: { type: 'integer' } },
        },
      },
      handler: async (req) => {
        await sync().setTyping(req.requester, req.params.roomId, req.params.userId, req.body.typing, req.body.timeout);
        return {};
      },
    },

    // ---- receipts and read markers ----
    {
      method: 'POST',
      path: '/rooms/:roomId/receipt/:receiptType/:eventId',
      handler: async (req) => {
        await sync().postReceipt(req.requester, req.params.roomId, req.params.receiptType, req.params.eventId, req.body);
        return {};
      },
    },
    {
      method: 'POST',
      path: '/rooms/:roomId/read_markers',
      schema: {
        body: {
          type: 'object',
          properties: {
            'm.fully_read': { type: 'string' },
            'm.read': { type: 'string' },
            'm.read.private': { type: 'string' },
          },
        },
      },
      handler: async (req) => {
        await sync().setReadMarkers(req.requester, req.params.roomId, req.body);
        return {};
      },
    },

    // ---- account data (spec: "Client Config") ----
    {
      method: 'GET',
      path: '/user/:userId/account_data/:type',
      handler: (req) => sync().getAccountDataFor(req.requester, req.params.userId, null, req.params.type),
    },
    {
      method: 'PUT',
      path: '/user/:userId/account_data/:type',
      handler: async (req) => {
        await sync().putAccountDataFor(req.requester, req.params.userId, null, req.params.type, req.body);
        return {};
      },
    },
    {
      method: 'GET',
      path: '/user/:userId/rooms/:roomId/account_data/:type',
      handler: (req) => sync().getAccountDataFor(req.requester, req.params.userId, req.params.roomId, req.params.type),
    },
    {
      method: 'PUT',
      path: '/user/:userId/rooms/:roomId/account_data/:type',
      handler: async (req) => {
        await sync().putAccountDataFor(req.requester, req.params.userId, req.params.roomId, req.params.type, req.body);
        return {};
      },
    },

    // ---- tags (spec: "Room Tagging") ----
    {
      method: 'GET',
      path: '/user/:userId/rooms/:roomId/tags',
      handler: (req) => sync().getTags(req.requester, req.params.userId, req.params.roomId),
    },
    {
      method: 'PUT',
      path: '/user/:userId/rooms/:roomId/tags/:tag',
      schema: { body: { type: 'object', properties: { order: { type: 'number' } } } },
      handler: async (req) => {
        await sync().putTag(req.requester, req.params.userId, req.params.roomId, req.params.tag, req.body);
        return {};
      },
    },
    {
      method: 'DELETE',
      path: '/user/:userId/rooms/:roomId/tags/:tag',
      handler: async (req) => {
        await sync().deleteTag(req.requester, req.params.userId, req.params.roomId, req.params.tag);
        return {};
      },
    },

    // ---- presence (spec: "Presence") ----
    {
      method: 'GET',
      path: '/presence/:userId/status',
      handler: (req) => sync().getPresence(req.requester, req.params.userId),
    },
    {
      method: 'PUT',
      path: '/presence/:userId/status',
      schema: {
        body: {
          type: 'object',
          required: ['presence'],
          properties: { presence: presenceEnum, status_msg: { type: 'string' } },
        },
      },
      handler: async (req) => {
        await sync().setPresence(req.requester, req.params.userId, req.body.presence, req.body.status_msg);
        return {};
      },
    },
  ];
}
