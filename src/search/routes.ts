import type { Context } from '../context.js';
import type { Route } from '../http/router.js';

const contextLimit = { type: 'integer', minimum: 0 };

/** The request body of POST /search (search.yaml). */
const SEARCH_BODY = {
  type: 'object',
  required: ['search_categories'],
  properties: {
    search_categories: {
      type: 'object',
      properties: {
        room_events: {
          type: 'object',
          required: ['search_term'],
          properties: {
            search_term: { type: 'string' },
            keys: { type: 'array', items: { type: 'string' } },
            filter: { type: 'object' },
            order_by: { type: 'string', enum: ['recent', 'rank'] },
            event_context: {
              type: 'object',
              properties: { before_limit: contextLimit, after_limit: contextLimit, include_profile: { type: 'boolean' } },
            },
            include_state: { type: 'boolean' },
            groupings: {
              type: 'object',
              properties: { group_by: { type: 'array', items: { type: 'object', properties: { key: { type: 'string' } } } } },
            },
          },
        },
      },
    },
  },
};

export function searchRoutes(ctx: Context): Route[] {
  return [
    {
      method: 'POST',
      path: '/search',
      schema: { body: SEARCH_BODY, querystring: { type: 'object', properties: { next_batch: { type: 'string' } } } },
      handler: (req) => ctx.services.search.search(req.requester, req.body, req.query.next_batch),
    },
  ];
}
