import type { Context } from '../context.js';
import type { Route } from '../http/router.js';

const RULE = '/pushrules/global/:kind/:ruleId';
const actionsSchema = { type: 'array', items: { type: ['string', 'object'] } };

export function pushRoutes(ctx: Context): Route[] {
  const push = () => ctx.services.push;
  return [
    {
      method: 'GET',
      path: '/pushrules/',
      handler: async (req) => ({ global: await push().getRuleset(req.requester.userId) }),
    },
    {
      method: 'GET',
      path: '/pushrules/global/',
      handler: (req) => push().getRuleset(req.requester.userId),
    },
    {
      method: 'GET',
      path: RULE,
      handler: (req) => push().getRule(req.requester.userId, req.params.kind, req.params.ruleId),
    },
    {
      method: 'PUT',
      path: RULE,
      schema: {
        querystring: { type: 'object', properties: { before: { type: 'string' }, after: { type: 'string' } } },
        body: {
          type: 'object',
          required: ['actions'],
          properties: { actions: actionsSchema, conditions: { type: 'array', items: { type: 'object' } }, pattern: { type: 'string' } },
        },
      },
      handler: async (req) => {
        const { before, after } = req.query as { before?: string; after?: string };
        await push().putRule(req.requester.userId, req.params.kind, req.params.ruleId, req.body, { before, after });
        return {};
      },
    },
    {
      method: 'DELETE',
      path: RULE,
      handler: async (req) => {
        await push().deleteRule(req.requester.userId, req.params.kind, req.params.ruleId);
        return {};
      },
    },
    {
      method: 'GET',
      path: `${RULE}/enabled`,
      handler: async (req) => ({ enabled: (await push().getRule(req.requester.userId, req.params.kind, req.params.ruleId)).enabled }),
    },
    {
      method: 'PUT',
      path: `${RULE}/enabled`,
      schema: { body: { type: 'object', required: ['enabled'], properties: { enabled: { type: 'boolean' } } } },
      handler: async (req) => {
        await push().setRuleEnabled(req.requester.userId, req.params.kind, req.params.ruleId, req.body.enabled);
        return {};
      },
    },
    {
      method: 'GET',
      path: `${RULE}/actions`,
      handler: async (req) => ({ actions: (await push().getRule(req.requester.userId, req.params.kind, req.params.ruleId)).actions }),
    },
    {
      method: 'PUT',
      path: `${RULE}/actions`,
      schema: { body: { type: 'object', required: ['actions'], properties: { actions: actionsSchema } } },
      handler: async (req) => {
        await push().setRuleActions(req.requester.userId, req.params.kind, req.params.ruleId, req.body.actions);
        return {};
      },
    },
    {
      method: 'GET',
      path: '/pushers',
      handler: async (req) => ({ pushers: await push().getPushers(req.requester.userId) }),
    },
    {
      method: 'POST',
      path: '/pushers/set',
      schema: {
        body: {
          type: 'object',
          required: ['kind', 'app_id', 'pushkey'],
          properties: {
            pushkey: { type: 'string' },
            kind: { type: ['string', 'null'] },
            app_id: { type: 'string' },
            app_display_name: { type: 'string' },
            device_display_name: { type: 'string' },
            profile_tag: { type: 'string' },
            lang: { type: 'string' },
            data: { type: 'object' },
            append: { type: 'boolean' },
          },
        },
      },
      handler: async (req) => {
        await push().setPusher(req.requester.userId, req.requester.deviceId, req.body);
        return {};
      },
    },
    {
      method: 'GET',
      path: '/notifications',
      schema: {
        querystring: {
          type: 'object',
          properties: { from: { type: 'string' }, limit: { type: 'integer', minimum: 0 }, only: { type: 'string' } },
        },
      },
      handler: (req) => push().getNotifications(req.requester.userId, req.query, req.requester.deviceId),
    },
  ];
}
