import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onResponseHookHandler } from 'fastify';
import type { HearthMetrics } from './metrics.js';
import type { RouteStats } from './route-stats.js';

/**
 * Counts every answered request by its route pattern (`/_matrix/client/v3/rooms/:roomId/send/...`),
 * never the raw URL: room and event ids in paths would make a series per request. Requests no
 * route matched share one label. Added before the routes, so every route has it.
 *
 * Each route gets a hook of its own that knows its pattern: reading the pattern off the request
 * (`req.routeOptions`) builds an object of the route's options on every call, which every send
 * would pay for.
 */
export function instrumentHttp(app: FastifyInstance, metrics: HearthMetrics): void {
  app.addHook('onRoute', (route) => {
    const hook = answeredOn(metrics, route.url);
    const own = route.onResponse;
    route.onResponse = own === undefined ? [hook] : [...(Array.isArray(own) ? own : [own]), hook];
  });
  const unmatched = answeredOn(metrics, 'unmatched');
  // A callback hook: an async one costs a promise per request.
  app.addHook('onResponse', (req, reply, done) => {
    if (req.is404) unmatched.call(app, req, reply, done);
    else done();
  });
}

/** The hook that counts and times the answers of one route pattern. */
function answeredOn(metrics: HearthMetrics, route: string): onResponseHookHandler {
  // Most routes answer one method; a HEAD route shares its GET's options.
  let last: RouteStats | undefined;
  return (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (last?.method !== req.method) last = metrics.http.of(req.method, route);
    last.answered(reply.statusCode, reply.elapsedTime / 1000);
    done();
  };
}
