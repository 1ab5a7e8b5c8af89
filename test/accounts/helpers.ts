import { createHash } from 'node:crypto';
import type { TestServer, TestUser } from '../helpers/server.js';

/** Calls the accounts domain made into other domains during a test. */
export interface CrossDomainCalls {
  devicesChanged: { userId: string; deleted: string[] }[];
  profileChanged: string[];
  leftAllRooms: string[];
}

/**
 * Records the calls accounts makes into rooms and e2ee, then makes them.
 * Re-install after `server.restart()` (the services are new objects).
 */
export function spyCrossDomain(server: TestServer, calls?: CrossDomainCalls): CrossDomainCalls {
  const c: CrossDomainCalls = calls ?? { devicesChanged: [], profileChanged: [], leftAllRooms: [] };
  const { rooms, e2ee } = server.hs.ctx.services;
  const recordDevicesChangedIn = e2ee.recordDevicesChangedIn.bind(e2ee);
  e2ee.recordDevicesChangedIn = async (trx, userId, deleted) => {
    c.devicesChanged.push({ userId, deleted: [...deleted] });
    return recordDevicesChangedIn(trx, userId, deleted);
  };
  const onProfileChanged = rooms.onProfileChanged.bind(rooms);
  rooms.onProfileChanged = async (userId) => {
    c.profileChanged.push(userId);
    await onProfileChanged(userId);
  };
  const leaveAllRooms = rooms.leaveAllRooms.bind(rooms);
  rooms.leaveAllRooms = async (userId) => {
    c.leftAllRooms.push(userId);
    await leaveAllRooms(userId);
  };
  return c;
}

export const CLIENT = '/_matrix/client/v3';

export function localpartOf(user: TestUser): string {
  return user.userId.slice(1, user.userId.indexOf(':'));
}

/** The `m.login.password` auth dict for user-interactive auth. */
export function passwordAuth(user: TestUser, session?: string, password = user.password): Record<string, unknown> {
  const auth: Record<string, unknown> = {
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: user.userId },
    password,
  };
  if (session !== undefined) auth.session = session;
  return auth;
}

/** Logs in again: a new device for the same user. */
export async function login(server: TestServer, user: TestUser, extra: Record<string, unknown> = {}): Promise<TestUser & { body: any }> {
  const res = await server.request('POST', `${CLIENT}/login`, {
    body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: user.userId }, password: user.password, ...extra },
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...user, accessToken: res.body.access_token, deviceId: res.body.device_id, body: res.body };
}

export async function whoami(server: TestServer, token: string) {
  return server.request('GET', `${CLIENT}/account/whoami`, { token });
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Runs a request through user-interactive auth with the user's password; returns the final answer. */
export async function withPasswordUia(
  server: TestServer,
  method: string,
  path: string,
  user: TestUser,
  body: Record<string, unknown> = {},
) {
  const first = await server.request(method, path, { token: user.accessToken, body });
  if (first.status !== 401 || !first.body?.session) return first;
  return server.request(method, path, { token: user.accessToken, body: { ...body, auth: passwordAuth(user, first.body.session) } });
}
