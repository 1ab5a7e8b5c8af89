import type { FastifyInstance } from 'fastify';
import type { HearthMetrics } from './metrics.js';

/**
 * Counts every answered request by its route pattern (`/_matrix/client/v3/rooms/:roomId/send/...`),
 * never the raw URL: room and event ids in paths would make a series per request. Requests no
 * route matched share one label. Added before the routes, so every route has it.
 */
export function instrumentHttp(app: FastifyInstance, metrics: HearthMetrics): void {
  // A callback hook: an async one costs a promise per request.
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const method = req.method;
    metrics.requestAnswered(method, route, reply.statusCode);
    metrics.httpDuration.observe({ method, route }, reply.elapsedTime / 1000);
    done();
  });
}
