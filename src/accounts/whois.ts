/**
 * GET /_matrix/client/v3/admin/whois/{userId} (admin.yaml): a user's devices
 * with where and when each was last seen, for server admins and the user.
 * One session per device (its current access token); the user agent is not
 * recorded, so connections carry the address and time only.
 */
import type { Context } from '../context.js';
import { forbidden, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import type { Route } from '../http/router.js';
import { listDevices } from './device-store.js';

export async function whois(ctx: Context, requester: Requester, userId: string): Promise<{ user_id: string; devices: Record<string, unknown> }> {
  if (!requester.isAdmin && requester.userId !== userId) throw forbidden('You are not a server admin');
  if (!(await ctx.services.accounts.userExists(userId))) throw notFound('The user is not known to this server');
  const devices: Record<string, unknown> = {};
  for (const d of await listDevices(ctx.db, userId)) {
    const connection: Record<string, unknown> = {};
    if (d.last_seen_ip !== null) connection.ip = d.last_seen_ip;
    if (d.last_seen_ts !== null) connection.last_seen = Number(d.last_seen_ts);
    devices[d.device_id] = { sessions: [{ connections: Object.keys(connection).length > 0 ? [connection] : [] }] };
  }
  return { user_id: userId, devices };
}

export function whoisRoutes(ctx: Context): Route[] {
  return [{ method: 'GET', path: '/admin/whois/:userId', handler: (req) => whois(ctx, req.requester, req.params.userId) }];
}
