import type { Context } from '../context.js';
import type { Route } from '../http/router.js';
import { ServerNotices } from './service.js';

const noticeBody = {
  type: 'object',
  required: ['user_id', 'content'],
  properties: { user_id: { type: 'string' }, content: { type: 'object' }, type: { type: 'string' } },
};

/** The admin API for server notices, at the path Synapse's tools call (`/_synapse/admin/v1/send_server_notice`). */
export function serverNoticeRoutes(ctx: Context, notices: ServerNotices): Route[] {
  const admin = { prefix: '/_synapse/admin', versions: ['v1'] as Route['versions'] };
  return [
    { ...admin, method: 'POST', path: '/send_server_notice', schema: { body: noticeBody }, handler: (req) => notices.send(req.requester, req.body) },
    { ...admin, method: 'PUT', path: '/send_server_notice/:txnId', schema: { body: noticeBody }, handler: (req) => notices.send(req.requester, req.body, req.params.txnId) },
  ];
}
