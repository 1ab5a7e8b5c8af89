import type { Context } from '../context.js';
import type { Route } from '../http/router.js';

const relationsQuery = {
  type: 'object',
  properties: {
    from: { type: 'string' },
    to: { type: 'string' },
    limit: { type: 'integer' },
    dir: { type: 'string' },
    recurse: { type: 'boolean' },
  },
};

/** Event relationships (spec: relations.yaml, threads_list.yaml), under /_matrix/client/v1. */
export function relationsRoutes(ctx: Context): Route[] {
  const relations = () => ctx.services.relations;
  const getRelations: Route['handler'] = (req) =>
    relations().relations(req.requester, req.params.roomId, req.params.eventId, {
      relType: req.params.relType,
      eventType: req.params.eventType,
      from: req.query.from,
      to: req.query.to,
      limit: req.query.limit,
      dir: req.query.dir,
      recurse: req.query.recurse,
    });
  return [
    { method: 'GET', path: '/rooms/:roomId/relations/:eventId', versions: ['v1'], schema: { querystring: relationsQuery }, handler: getRelations },
    { method: 'GET', path: '/rooms/:roomId/relations/:eventId/:relType', versions: ['v1'], schema: { querystring: relationsQuery }, handler: getRelations },
    {
      method: 'GET',
      path: '/rooms/:roomId/relations/:eventId/:relType/:eventType',
      versions: ['v1'],
      schema: { querystring: relationsQuery },
      handler: getRelations,
    },
    {
      method: 'GET',
      path: '/rooms/:roomId/threads',
      versions: ['v1'],
      schema: {
        querystring: { type: 'object', properties: { include: { type: 'string' }, limit: { type: 'integer' }, from: { type: 'string' } } },
      },
      handler: (req) => relations().threads(req.requester, req.params.roomId, { include: req.query.include, limit: req.query.limit, from: req.query.from }),
    },
  ];
}
