import assert from 'node:assert/strict';
import type { ApiResponse, TestServer, TestUser } from '../helpers/server.js';

export const C = '/_matrix/client/v3';
export const e = encodeURIComponent;

let txnCounter = 0;
export function txn(): string {
  return `txn${process.pid}_${++txnCounter}_${Date.now()}`;
}

/** Asserts status (and errcode) of a response, with the body in the message. */
export function expectStatus(res: ApiResponse, status: number, errcode?: string): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  if (errcode !== undefined) assert.equal(res.body?.errcode, errcode, JSON.stringify(res.body));
}

export async function createRoom(server: TestServer, user: TestUser, body: Record<string, unknown> = {}): Promise<string> {
  const res = await server.request('POST', `${C}/createRoom`, { token: user.accessToken, body });
  expectStatus(res, 200);
  assert.match(res.body.room_id, /^!/);
  return res.body.room_id as string;
}

export async function send(server: TestServer, user: TestUser, roomId: string, body: Record<string, unknown>, type = 'm.room.message', txnId = txn()): Promise<string> {
  const res = await server.request('PUT', `${C}/rooms/${e(roomId)}/send/${e(type)}/${e(txnId)}`, { token: user.accessToken, body });
  expectStatus(res, 200);
  assert.match(res.body.event_id, /^\$/);
  return res.body.event_id as string;
}

export async function sendText(server: TestServer, user: TestUser, roomId: string, text: string): Promise<string> {
  return send(server, user, roomId, { msgtype: 'm.text', body: text });
}

export async function putState(server: TestServer, user: TestUser, roomId: string, type: string, stateKey: string, content: Record<string, unknown>): Promise<ApiResponse> {
  return server.request('PUT', `${C}/rooms/${e(roomId)}/state/${e(type)}/${e(stateKey)}`, { token: user.accessToken, body: content });
}

export async function join(server: TestServer, user: TestUser, roomIdOrAlias: string): Promise<ApiResponse> {
  return server.request('POST', `${C}/join/${e(roomIdOrAlias)}`, { token: user.accessToken, body: {} });
}

export async function membershipAction(server: TestServer, user: TestUser, roomId: string, action: string, body: Record<string, unknown> = {}): Promise<ApiResponse> {
  return server.request('POST', `${C}/rooms/${e(roomId)}/${action}`, { token: user.accessToken, body });
}

export async function roomState(server: TestServer, user: TestUser, roomId: string): Promise<any[]> {
  const res = await server.request('GET', `${C}/rooms/${e(roomId)}/state`, { token: user.accessToken });
  expectStatus(res, 200);
  return res.body as any[];
}

export function stateOf(state: any[], type: string, stateKey = ''): any {
  return state.find((ev) => ev.type === type && ev.state_key === stateKey);
}

export async function messages(server: TestServer, user: TestUser, roomId: string, query: Record<string, string | number>): Promise<ApiResponse> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
  return server.request('GET', `${C}/rooms/${e(roomId)}/messages?${qs}`, { token: user.accessToken });
}
