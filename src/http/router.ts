import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Context } from '../context.js';
import { MatrixError, guestAccessForbidden, invalidParam, missingToken, userLocked, userSuspended } from './errors.js';
import type { Requester } from './requester.js';
import { passRawBodies } from './server.js';

declare module 'fastify' {
  interface FastifyRequest {
    requester: Requester | null;
  }
}

export type ApiVersion = 'v3' | 'r0' | 'v1' | 'unstable';

export interface AuthedRequest extends FastifyRequest {
  requester: Requester;
}

/**
 * One endpoint. Routes stay thin: parse, validate (the JSON schema), call the
 * service, shape the answer. The handler's return value is sent as JSON with
 * status 200 unless the handler already replied.
 */
export interface Route {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Path after the version prefix, Fastify style: `/rooms/:roomId/send/:eventType/:txnId`. */
  path: string;
  /** Default `/_matrix/client`. */
  prefix?: string;
  /** Default `['v3', 'r0']`; `[]` means the path is used as is under the prefix. */
  versions?: ApiVersion[];
  /** Default 'required'. */
  auth?: 'required' | 'optional' | 'none';
  /** A locked account may still call it (logout only, by the spec). */
  allowLocked?: boolean;
  /**
   * A suspended account may not call it (joins, invites, messages, profile changes: the spec's
   * recommended list), or only for the requests the function picks.
   */
  refusedWhenSuspended?: boolean | ((req: FastifyRequest & { params: any; body: any }) => boolean);
  /**
   * Guest accounts may call this endpoint (spec: modules/guest_access, "Client behaviour" lists
   * them; and reads anyone may make without a token, which a client sends its guest token to
   * all the same). Any other endpoint answers a guest's token with 403 M_GUEST_ACCESS_FORBIDDEN.
   */
  guestAllowed?: boolean;
  /** A rate-limit action from the config (`login`, `registration`, `message`). */
  rateLimit?: string;
  schema?: { body?: object; querystring?: object; params?: object };
  /** The body is not parsed: the handler gets the unread request stream as `body` (uploads). */
  rawBody?: boolean;
  // The request is typed loosely on purpose: the JSON schema is the contract for body and query.
  handler(req: AuthedRequest & { body: any; query: any; params: any }, reply: FastifyReply): Promise<unknown> | unknown;
}

export function tokenFromRequest(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h) {
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (m) return m[1];
  }
  const q = (req.query as Record<string, unknown> | undefined)?.access_token;
  return typeof q === 'string' && q.length > 0 ? q : undefined;
}

/** No identifier, type or key in a path may hold NUL: PostgreSQL cannot store it and no spec grammar allows it. */
export function checkPathParams(params: unknown): void {
  if (!params) return;
  for (const v of Object.values(params as Record<string, unknown>)) {
    if (typeof v === 'string' && v.includes('\0')) throw invalidParam('Path parameters must not contain NUL characters');
  }
}

export function registerRoutes(app: FastifyInstance, ctx: Context, routes: Route[]): void {
  if (!app.hasRequestDecorator('requester')) app.decorateRequest('requester', null);
  // Raw-body routes (uploads) live in their own context, whose body parser hands the stream through.
  const raw = routes.filter((r) => r.rawBody);
  if (raw.length > 0) {
    app.register(async (child) => {
      passRawBodies(child);
      addRoutes(child, ctx, raw);
    });
  }
  addRoutes(app, ctx, routes.filter((r) => !r.rawBody));
}

function addRoutes(app: FastifyInstance, ctx: Context, routes: Route[]): void {
  for (const route of routes) {
    const prefix = route.prefix ?? '/_matrix/client';
    const versions = route.versions ?? ['v3', 'r0'];
    const urls = versions.length === 0 ? [prefix + route.path] : versions.map((v) => `${prefix}/${v}${route.path}`);
    const auth = route.auth ?? 'required';
    for (const url of urls) {
      app.route({
        method: route.method,
        url,
        schema: route.schema,
        // Authentication comes before body validation: an anonymous caller learns nothing about shapes.
        // One hook per request does all the checks before validation (each hook costs a promise).
        preValidation: async (req) => {
          checkPathParams(req.params);
          if (auth !== 'none') {
            const token = tokenFromRequest(req);
            if (token) req.requester = await ctx.services.accounts.authenticate(token, { ip: req.ip });
            else if (auth === 'required') throw missingToken();
            const r = req.requester;
            if (r?.locked && !route.allowLocked) throw userLocked();
            if (r?.suspended && route.refusedWhenSuspended) {
              const refused = route.refusedWhenSuspended;
              if (refused === true || refused(req as FastifyRequest & { params: any; body: any })) throw userSuspended();
            }
            if (req.requester?.isGuest === true && route.guestAllowed !== true) throw guestAccessForbidden();
          }
          if (route.rateLimit) {
            await ctx.rateLimiter.check(route.rateLimit, req.requester?.userId ?? req.ip);
          }
          if (!route.rawBody && (route.method === 'POST' || route.method === 'PUT')) {
            const b = req.body;
            if (b === undefined || b === null) req.body = {};
            else if (typeof b !== 'object' || Array.isArray(b)) {
              throw new MatrixError(400, 'M_BAD_JSON', 'Body must be a JSON object');
            }
          }
        },
        handler: async (req, reply) => {
          const result = await route.handler(req as AuthedRequest & { body: any; query: any; params: any }, reply);
          if (!reply.sent) return reply.send(result ?? {});
          return reply;
        },
      });
    }
  }
}
