// The read endpoints (/event, /state_ids, /state, /event_auth, /backfill) serve a room's events
// to a server with a member in it and refuse a server without one.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { SigningKey } from '../../src/core/signing.js';
import { FakeRemote, roomHead } from '../helpers/remote-server.js';
import type { TestUser } from '../helpers/server.js';
import { createRoom, sendText } from '../rooms/room-helpers.js';
import { F, keyServer, signedRequest, startPair, type Pair } from './federation-helpers.js';

let pair: Pair;
let c: Awaited<ReturnType<typeof keyServer>>;
let alice: TestUser;
let roomId: string;
let otherRoom: string;
const sent: string[] = [];
const e = encodeURIComponent;

/** A GET signed as a.test by its own client. */
function asA<T = any>(path: string): Promise<T> {
  return pair.a.hs.ctx.services.federation.client.request<T>('b.test', { method: 'GET', path });
}

/** A GET signed as c.test, which has no member in any room. */
function asC(path: string) {
  return signedRequest(pair.b, 'GET', path, { origin: 'c.test', key: c.key });
}

before(async () => {
  c = await keyServer('c.test');
  pair = await startPair({ 'c.test': c.url });
  alice = await pair.b.registerUser('reads_alice');
  roomId = await createRoom(pair.b, alice, { preset: 'public_chat', room_version: '10' });
  otherRoom = await createRoom(pair.b, alice, { preset: 'public_chat', room_version: '10' });
  // bob of a.test joins through /send.
  const remote = new FakeRemote('a.test');
  (remote as { key: SigningKey }).key = pair.a.hs.ctx.signingKey;
  const bob = remote.user('bob');
  const h = await roomHead(pair.b, roomId);
  const join = remote.event(roomId, '10', { sender: bob, type: 'm.room.member', stateKey: bob, content: { membership: 'join' }, prev: h.extremities, authFrom: h.state, depth: h.depth + 1 });
  const answer = await pair.a.hs.ctx.services.federation.client.request<any>('b.test', { method: 'PUT', path: `${F}/send/reads1`, body: { origin: 'a.test', origin_server_ts: Date.now(), pdus: [join.pdu] } });
  assert.deepEqual(answer.pdus[join.eventId], {});
  for (let i = 0; i < 5; i++) sent.push(await sendText(pair.b, alice, roomId, `read me ${i}`));
  await sendText(pair.b, alice, otherRoom, 'not for a.test');
});
after(async () => {
  await pair.stop();
  await c.close();
});

test('GET /version', async () => {
  const res = await pair.b.request('GET', `${F}/version`);
  assert.equal(res.status, 200);
  assert.equal(res.body.server.name, 'Hearth');
  assert.match(res.body.server.version, /^\d+\.\d+/);
});

test('/event serves an event to a member server', async () => {
  const res = await asA<any>(`${F}/event/${e(sent[0]!)}`);
  assert.equal(res.origin, 'b.test');
  assert.equal(res.pdus.length, 1);
  assert.equal(res.pdus[0].content.body, 'read me 0');
  assert.equal(res.pdus[0].room_id, roomId);
  assert.ok(res.pdus[0].signatures['b.test']);
});

test('/state_ids and /state: the state before the event and its auth chain', async () => {
  const ids = await asA<any>(`${F}/state_ids/${e(roomId)}?event_id=${e(sent[2]!)}`);
  const state = await asA<any>(`${F}/state/${e(roomId)}?event_id=${e(sent[2]!)}`);
  const head = await roomHead(pair.b, roomId);
  assert.deepEqual([...ids.pdu_ids].sort(), [...head.state.values()].sort());
  const events = await pair.b.hs.ctx.services.rooms.core.events.getMany(ids.pdu_ids);
  assert.deepEqual(state.pdus.map((p: any) => `${p.type}|${p.state_key}`).sort(), [...events.values()].map((ev) => `${ev.pdu.type}|${ev.pdu.state_key}`).sort());
  assert.ok(state.pdus.some((p: any) => p.type === 'm.room.member' && p.state_key === '@bob:a.test'));
  assert.ok(ids.auth_chain_ids.length >= 3);
  assert.equal(state.auth_chain.length, ids.auth_chain_ids.length);
});

test('/event_auth: the auth chain of an event', async () => {
  const res = await asA<any>(`${F}/event_auth/${e(roomId)}/${e(sent[1]!)}`);
  const types = res.auth_chain.map((p: any) => p.type);
  assert.ok(types.includes('m.room.create') && types.includes('m.room.power_levels') && types.includes('m.room.member'), JSON.stringify(types));
});

test('/backfill: the events before and including v, deepest first, up to limit', async () => {
  const res = await asA<any>(`${F}/backfill/${e(roomId)}?v=${e(sent[4]!)}&limit=3`);
  assert.equal(res.origin, 'b.test');
  assert.deepEqual(res.pdus.map((p: any) => p.content.body), ['read me 4', 'read me 3', 'read me 2']);
  const all = await asA<any>(`${F}/backfill/${e(roomId)}?v=${e(sent[4]!)}&limit=100`);
  assert.equal(all.pdus.at(-1).type, 'm.room.create');
});

test('a server without a member in the room is refused with 403', async () => {
  const paths = [
    `${F}/event/${e(sent[0]!)}`,
    `${F}/state_ids/${e(roomId)}?event_id=${e(sent[0]!)}`,
    `${F}/state/${e(roomId)}?event_id=${e(sent[0]!)}`,
    `${F}/event_auth/${e(roomId)}/${e(sent[0]!)}`,
    `${F}/backfill/${e(roomId)}?v=${e(sent[0]!)}&limit=10`,
  ];
  for (const path of paths) {
    const res = await asC(path);
    assert.equal(res.status, 403, `${path}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.errcode, 'M_FORBIDDEN');
  }
  // a.test is a member of one room, not of the other.
  const other = await roomHead(pair.b, otherRoom);
  const res = await signedRequest(pair.b, 'GET', `${F}/state_ids/${e(otherRoom)}?event_id=${e(other.extremities[0]!)}`, { origin: 'a.test', key: pair.a.hs.ctx.signingKey });
  assert.equal(res.status, 403);
  const unknown = await asC(`${F}/event/${e('$doesnotexist')}`);
  assert.equal(unknown.status, 404);
});
