import type { Context } from '../context.js';
import { forbidden, missingParam, notFound } from '../http/errors.js';
import type { Route } from '../http/router.js';

/**
 * The client-server endpoints that exist for application services. Hearth registers no
 * application services (there is no `as_token` it would accept), so every access token belongs
 * to a user, no bridge announces a third-party protocol, and each endpoint answers what the spec
 * names for that case: an empty protocol list, 404 M_NOT_FOUND for a lookup, 403 M_FORBIDDEN for
 * what only an application service may call (client-server-api "Third-party lookups",
 * "Application service ping", "Application service room directory").
 */
export function appserviceRoutes(_ctx: Context): Route[] {
  const notAnAppservice = () => forbidden('This access token does not belong to an application service');
  const unknownProtocol = (protocol: string) => notFound(`No application service provides the protocol ${protocol}`);
  return [
    {
      method: 'POST',
      path: '/appservice/:appserviceId/ping',
      versions: ['v1'],
      schema: { body: { type: 'object', properties: { transaction_id: { type: 'string' } } } },
      handler: () => {
        throw notAnAppservice();
      },
    },
    {
      method: 'PUT',
      path: '/directory/list/appservice/:networkId/:roomId',
      schema: { body: { type: 'object', required: ['visibility'], properties: { visibility: { enum: ['public', 'private'] } } } },
      handler: () => {
        throw notAnAppservice();
      },
    },
    { method: 'GET', path: '/thirdparty/protocols', handler: () => ({}) },
    {
      method: 'GET',
      path: '/thirdparty/protocol/:protocol',
      handler: (req) => {
        throw unknownProtocol(req.params.protocol);
      },
    },
    {
      method: 'GET',
      path: '/thirdparty/location/:protocol',
      handler: (req) => {
        throw unknownProtocol(req.params.protocol);
      },
    },
    {
      method: 'GET',
      path: '/thirdparty/user/:protocol',
      handler: (req) => {
        throw unknownProtocol(req.params.protocol);
      },
    },
    {
      method: 'GET',
      path: '/thirdparty/location',
      schema: { querystring: { type: 'object', properties: { alias: { type: 'string' } } } },
      handler: (req) => {
        if (typeof req.query.alias !== 'string') throw missingParam('Missing the alias query parameter');
        throw notFound(`No third-party location is bridged to ${req.query.alias}`);
      },
    },
    {
      method: 'GET',
      path: '/thirdparty/user',
      schema: { querystring: { type: 'object', properties: { userid: { type: 'string' } } } },
      handler: (req) => {
        if (typeof req.query.userid !== 'string') throw missingParam('Missing the userid query parameter');
        throw notFound(`No third-party user is bridged to ${req.query.userid}`);
      },
    },
  ];
}
