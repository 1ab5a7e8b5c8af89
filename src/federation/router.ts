/**
 * Federation endpoints as Fastify routes: paths are full (`/_matrix/federation/v1/...`,
 * `/_matrix/key/v2/...`), and `auth: 'server'` routes are authenticated by X-Matrix before
 * their body is validated, the origin handed to the handler.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MatrixError } from '../http/errors.js';
import { checkPathParams } from '../http/router.js';
import type { FederationKeyRing } from './keys/federation-key-ring.js';
import { authenticateServer } from './request-auth.js';

export interface ServerRequest extends FastifyRequest {
  /** The authenticated origin server ('' on routes without server authentication). */
  origin: string;
}

export interface FederationRoute {
  method: 'GET' | 'PUT' | 'POST';
  url: string;
  /** 'server' (default): X-Matrix; 'none': key server endpoints. */
  auth?: 'server' | 'none';
  schema?: { body?: object; querystring?: object; params?: object };
  bodyLimit?: number;
  // Typed loosely on purpose: the JSON schema is the contract for body and query.
  handler(req: ServerRequest & { body: any; query: any; params: any }, reply: FastifyReply): Promise<unknown> | unknown;
}

export function registerFederationRoutes(app: FastifyInstance, serverName: string, keyRing: FederationKeyRing, routes: FederationRoute[]): void {
  if (!app.hasRequestDecorator('origin')) app.decorateRequest('origin', '');
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      schema: route.schema,
      ...(route.bodyLimit !== undefined ? { bodyLimit: route.bodyLimit } : {}),
      preValidation: async (req) => {
        checkPathParams(req.params);
        if ((route.auth ?? 'server') === 'server') (req as ServerRequest).origin = await authenticateServer(req, serverName, keyRing);
        if (route.method !== 'GET') {
          const b = req.body;
          if (b === undefined || b === null) req.body = {};
          else if (typeof b !== 'object' || Array.isArray(b)) throw new MatrixError(400, 'M_BAD_JSON', 'Body must be a JSON object');
        }
      },
      handler: async (req, reply) => {
        const result = await route.handler(req as ServerRequest & { body: any; query: any; params: any }, reply);
        if (!reply.sent) return reply.send(result ?? {});
        return reply;
      },
    });
  }
}
