import ipaddr from 'ipaddr.js';
import { timingSafeEqual } from 'node:crypto';
import type { HearthConfig } from '../config/schema.js';
import { MatrixError } from '../http/errors.js';
import { parseCidrs } from '../http/outbound-guard.js';
import type { Route } from '../http/router.js';
import type { HearthMetrics } from './metrics.js';

/**
 * `GET /metrics` for Prometheus (outside the Matrix API). Figures such as the federation
 * destinations name other servers and show load, so a scrape is answered only from the addresses
 * in `metrics.allow_from` (loopback by default) and, when `metrics.bearer_token` is set, only with
 * that token. Behind a reverse proxy every request comes from the proxy's address: the proxy must
 * not pass /metrics from outside (docs/cluster/haproxy.cfg refuses it).
 */
export function metricsRoutes(config: HearthConfig['metrics'], metrics: HearthMetrics): Route[] {
  const allow = parseCidrs(config.allow_from);
  const token = config.bearer_token ? Buffer.from(config.bearer_token) : null;
  return [
    {
      method: 'GET',
      path: '/metrics',
      prefix: '',
      versions: [],
      auth: 'none',
      handler: async (req, reply) => {
        if (!addressAllowed(req.ip, allow)) throw new MatrixError(403, 'M_FORBIDDEN', 'Metrics are not served to this address');
        if (token && !tokenMatches(req.headers.authorization, token)) {
          throw new MatrixError(403, 'M_FORBIDDEN', 'Metrics need the configured bearer token');
        }
        const { contentType, body } = await metrics.scrape();
        return reply.header('content-type', contentType).send(body);
      },
    },
  ];
}

function addressAllowed(address: string, allow: ReturnType<typeof parseCidrs>): boolean {
  if (!ipaddr.isValid(address)) return false;
  // ::ffff:127.0.0.1 is judged as 127.0.0.1.
  const ip = ipaddr.process(address);
  return allow.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));
}

function tokenMatches(header: string | undefined, token: Buffer): boolean {
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!m) return false;
  const given = Buffer.from(m[1]);
  return given.length === token.length && timingSafeEqual(given, token);
}
