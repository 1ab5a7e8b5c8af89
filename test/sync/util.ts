import assert from 'node:assert/strict';
import type { TestServer, TestUser } from '../helpers/server.js';

/** Small helpers over the real HTTP API, shared by the sync tests. */

export const C = '/_matrix/client/v3';

export async function createRoom(s: TestServer, u: TestUser, body: Record<string, unknown> = {}): Promise<string> {
  const res = await s.request('POST', `${C}/createRoom`, { token: u.accessToken, body });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.room_id as string;
}

let txn = 0;
export async function send(s: TestServer, u: TestUser, roomId: string, body: string | Record<string, unknown>, type = 'm.room.message'): Promise<string> {
  const content = typeof body === 'string' ? { msgtype: 'm.text', body } : body;
  const res = await s.request('PUT', `${C}/rooms/${encodeURIComponent(roomId)}/send/${type}/t${process.pid}_${++txn}`, {
    token: u.accessToken,
    body: content,
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.event_id as string;
}

export async function setState(s: TestServer, u: TestUser, roomId: string, type: string, stateKey: string, content: Record<string, unknown>): Promise<string> {
  const res = await s.request('PUT', `${C}/rooms/${encodeURIComponent(roomId)}/state/${type}/${encodeURIComponent(stateKey)}`, {
    token: u.accessToken,
    body: content,
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.event_id as string;
}

export async function join(s: TestServer, u: TestUser, roomId: string): Promise<void> {
  const res = await s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/join`, { token: u.accessToken, body: {} });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

export async function invite(s: TestServer, u: TestUser, roomId: string, userId: string): Promise<void> {
  const res = await s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/invite`, { token: u.accessToken, body: { user_id: userId } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

export async function leave(s: TestServer, u: TestUser, roomId: string): Promise<void> {
  const res = await s.request('POST', `${C}/rooms/${encodeURIComponent(roomId)}/leave`, { token: u.accessToken, body: {} });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

export interface SyncOpts {
  since?: string;
  filter?: string | Record<string, unknown>;
  timeout?: number;
  full_state?: boolean;
  set_presence?: string;
  use_state_after?: boolean;
}

export function syncPath(o: SyncOpts = {}): string {
  const q = new URLSearchParams();
  if (o.since !== undefined) q.set('since', o.since);
  if (o.filter !== undefined) q.set('filter', typeof o.filter === 'string' ? o.filter : JSON.stringify(o.filter));
  q.set('timeout', String(o.timeout ?? 0));
  if (o.full_state !== undefined) q.set('full_state', String(o.full_state));
  if (o.set_presence !== undefined) q.set('set_presence', o.set_presence);
  if (o.use_state_after !== undefined) q.set('use_state_after', String(o.use_state_after));
  return `${C}/sync?${q}`;
}

/** A successful /sync body. */
export async function sync(s: TestServer, u: TestUser, o: SyncOpts = {}): Promise<any> {
  const res = await s.request('GET', syncPath(o), { token: u.accessToken });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.match(res.body.next_batch, /^s\d+(_\d+){6}$/);
  return res.body;
}

/** Message bodies of a timeline, in order. */
export function bodies(events: any[]): string[] {
  return events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);
}

export function findState(events: any[], type: string, stateKey = ''): any {
  return events.find((e) => e.type === type && e.state_key === stateKey);
}

/** A room's state as the client ends up with it: the state section, then the timeline's state events. */
export function latestState(room: any, type: string, stateKey = ''): any {
  const tl = [...room.timeline.events].reverse();
  return findState(tl, type, stateKey) ?? findState(room.state?.events ?? room.state_after?.events ?? [], type, stateKey);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Restarts the server. fetch's pooled keep-alive sockets still point at the
 * old server; the first request on one fails with "other side closed", so
 * one throwaway request drains them.
 */
export async function restart(s: TestServer): Promise<void> {
  await s.restart();
  for (let i = 0; i < 3; i++) {
    try {
      await s.request('GET', '/_matrix/client/versions');
      return;
    } catch {
      /* a stale pooled socket: try again */
    }
  }
}
