import type { FastifyRequest } from 'fastify';

/** The parts of a request a user-interactive auth session is bound to. */
export function requestInfo(req: FastifyRequest): { method: string; path: string; ip: string } {
  const q = req.url.indexOf('?');
  return { method: req.method, path: q < 0 ? req.url : req.url.slice(0, q), ip: req.ip };
}
