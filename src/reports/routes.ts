import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { ReportsService } from './service.js';

const reasonBody = (required: boolean) => ({
  type: 'object',
  ...(required ? { required: ['reason'] } : {}),
  properties: { reason: { type: 'string' } },
});

export function reportRoutes(ctx: Context): Route[] {
  const reports = new ReportsService(ctx);
  return [
    {
      method: 'POST',
      path: '/rooms/:roomId/report/:eventId',
      rateLimit: 'message',
      schema: { body: reasonBody(false) },
      handler: async (req) => {
        await reports.reportEvent(req.requester, req.params.roomId, req.params.eventId, req.body.reason);
        return {};
      },
    },
    {
      method: 'POST',
      path: '/rooms/:roomId/report',
      rateLimit: 'message',
      schema: { body: reasonBody(true) },
      handler: async (req) => {
        await reports.reportRoom(req.requester, req.params.roomId, req.body.reason);
        return {};
      },
    },
    {
      method: 'POST',
      path: '/users/:userId/report',
      rateLimit: 'message',
      schema: { body: reasonBody(true) },
      handler: async (req) => {
        await reports.reportUser(req.requester, req.params.userId, req.body.reason);
        return {};
      },
    },
    {
      // Server admins read the reports here (a Hearth admin endpoint, outside the Matrix APIs).
      method: 'GET',
      path: '/reports',
      prefix: '/_hearth/admin',
      versions: ['v1'],
      handler: (req) => reports.list(req.requester, req.query),
    },
  ];
}
