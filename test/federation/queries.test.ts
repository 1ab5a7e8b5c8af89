// Federation queries served and used (server-server query.yaml, public_rooms.yaml,
// user_devices.yaml, user_keys.yaml): a client of b.test resolves and joins by an alias of
// a.test, reads a profile and the room directory of a.test, and queries and claims keys of
// a.test's users; a server that is down or never answers is named in `failures` within the
// client's timeout.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { deviceKeys, otks } from '../e2ee/helpers.js';
import { C, createRoom, e, expectStatus } from '../rooms/room-helpers.js';
import { F, httpServer, REFUSED_URL, signedRequest, startPair } from './federation-helpers.js';

describe('federation queries', { timeout: 120_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  let stop: () => Promise<void>;
  let silent: Awaited<ReturnType<typeof httpServer>>;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;

  before(async () => {
    // down.test: nothing listens there; slow.test: accepts and never answers.
    silent = await httpServer(() => undefined);
    const pair = await startPair({ 'down.test': REFUSED_URL, 'slow.test': silent.url });
    ({ a, b } = pair);
    stop = pair.stop;
    alice = await a.registerUser('alice');
    bob = await b.registerUser('bob');
    expectStatus(await a.request('PUT', `${C}/profile/${e(alice.userId)}/displayname`, { token: alice.accessToken, body: { displayname: 'Alice of A' } }), 200);
    roomId = await createRoom(a, alice, { preset: 'public_chat', name: 'The square', room_alias_name: 'square', visibility: 'public' });
  });
  after(async () => {
    await stop();
    await silent.close();
  });

  it('resolves an alias of a.test through /query/directory, and a missing one is M_NOT_FOUND', async () => {
    const res = await b.request('GET', `${C}/directory/room/${e('#square:a.test')}`, { token: bob.accessToken });
    expectStatus(res, 200);
    assert.equal(res.body.room_id, roomId);
    assert.ok(res.body.servers.includes('a.test'));
    expectStatus(await b.request('GET', `${C}/directory/room/${e('#nothing:a.test')}`, { token: bob.accessToken }), 404, 'M_NOT_FOUND');
    // An unreachable server is not a 500.
    const down = await b.request('GET', `${C}/directory/room/${e('#x:down.test')}`, { token: bob.accessToken });
    assert.equal(down.status, 502, JSON.stringify(down.body));
  });

  it('the query endpoint answers only for its own aliases, and asks for room_alias', async () => {
    const viaB = b.hs.ctx.services.federation.client;
    const got = await viaB.request<any>('a.test', { method: 'GET', path: `${F}/query/directory?room_alias=${e('#square:a.test')}` });
    assert.equal(got.room_id, roomId);
    await assert.rejects(viaB.request('a.test', { method: 'GET', path: `${F}/query/directory?room_alias=${e('#square:b.test')}` }), (err: any) => err.status === 404);
    await assert.rejects(viaB.request('a.test', { method: 'GET', path: `${F}/query/directory` }), (err: any) => err.status === 400 && err.errcode === 'M_MISSING_PARAM');
    // Unsigned requests are refused.
    const unsigned = await signedRequest(a, 'GET', `${F}/query/directory?room_alias=${e('#square:a.test')}`, { origin: 'b.test', key: b.hs.ctx.signingKey, authorization: null });
    assert.equal(unsigned.status, 401);
  });

  it('joins by an alias of a.test, through the servers its answer names', async () => {
    const res = await b.request('POST', `${C}/join/${e('#square:a.test')}`, { token: bob.accessToken, body: {} });
    expectStatus(res, 200);
    assert.equal(res.body.room_id, roomId);
    const members = await b.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: bob.accessToken });
    expectStatus(members, 200);
    assert.ok(members.body.joined[alice.userId]);
  });

  it('reads a profile of a.test through /query/profile, whole or one field', async () => {
    const all = await b.request('GET', `${C}/profile/${e(alice.userId)}`, { token: bob.accessToken });
    expectStatus(all, 200);
    assert.equal(all.body.displayname, 'Alice of A');
    const one = await b.request('GET', `${C}/profile/${e(alice.userId)}/displayname`, { token: bob.accessToken });
    expectStatus(one, 200);
    assert.deepEqual(one.body, { displayname: 'Alice of A' });
    expectStatus(await b.request('GET', `${C}/profile/${e(alice.userId)}/avatar_url`, { token: bob.accessToken }), 404, 'M_NOT_FOUND');
    expectStatus(await b.request('GET', `${C}/profile/${e('@nobody:a.test')}`, { token: bob.accessToken }), 404, 'M_NOT_FOUND');
    // a.test answers only for its own users.
    const viaB = b.hs.ctx.services.federation.client;
    await assert.rejects(viaB.request('a.test', { method: 'GET', path: `${F}/query/profile?user_id=${e(bob.userId)}` }), (err: any) => err.status === 400);
  });

  it('reads the room directory of a.test, GET and POST with a filter', async () => {
    const got = await b.request('GET', `${C}/publicRooms?server=a.test`, { token: bob.accessToken });
    expectStatus(got, 200);
    assert.ok(got.body.chunk.some((r: any) => r.room_id === roomId && r.name === 'The square'));
    const hit = await b.request('POST', `${C}/publicRooms?server=a.test`, { token: bob.accessToken, body: { filter: { generic_search_term: 'squ' } } });
    expectStatus(hit, 200);
    assert.deepEqual(hit.body.chunk.map((r: any) => r.room_id), [roomId]);
    const miss = await b.request('POST', `${C}/publicRooms?server=a.test`, { token: bob.accessToken, body: { filter: { generic_search_term: 'zzz' } } });
    assert.deepEqual(miss.body.chunk, []);
    // b.test's own directory does not list a.test's room.
    const own = await b.request('GET', `${C}/publicRooms`, { token: bob.accessToken });
    assert.ok(!own.body.chunk.some((r: any) => r.room_id === roomId));
    assert.equal((await b.request('GET', `${C}/publicRooms?server=down.test`, { token: bob.accessToken })).status, 502);
  });

  it('queries and claims keys of a.test’s users, and names servers that fail in `failures`', async () => {
    // carol shares no room with anyone on b.test: her keys are asked of a.test each time.
    const carol = await a.registerUser('carol');
    const dk = deviceKeys(carol);
    expectStatus(await a.request('POST', `${C}/keys/upload`, { token: carol.accessToken, body: { device_keys: dk, one_time_keys: otks(carol, 2) } }), 200);
    const q = await b.request('POST', `${C}/keys/query`, {
      token: bob.accessToken,
      body: { device_keys: { [carol.userId]: [], '@someone:down.test': [] }, timeout: 5000 },
    });
    expectStatus(q, 200);
    assert.deepEqual(q.body.device_keys[carol.userId][carol.deviceId].keys, (dk as any).keys);
    assert.ok(q.body.failures['down.test'], 'down.test is in failures');
    assert.equal(q.body.failures['a.test'], undefined);

    const c1 = await b.request('POST', `${C}/keys/claim`, {
      token: bob.accessToken,
      body: { one_time_keys: { [carol.userId]: { [carol.deviceId]: 'signed_curve25519' }, '@x:down.test': { D: 'signed_curve25519' } } },
    });
    expectStatus(c1, 200);
    const keys1 = Object.keys(c1.body.one_time_keys[carol.userId][carol.deviceId]);
    assert.equal(keys1.length, 1);
    assert.ok(keys1[0]!.startsWith('signed_curve25519:'));
    assert.ok(c1.body.failures['down.test']);
    const c2 = await b.request('POST', `${C}/keys/claim`, { token: bob.accessToken, body: { one_time_keys: { [carol.userId]: { [carol.deviceId]: 'signed_curve25519' } } } });
    const keys2 = Object.keys(c2.body.one_time_keys[carol.userId][carol.deviceId]);
    assert.notDeepEqual(keys2, keys1, 'each claim takes another key');
  });

  it('a server that never answers is a failure after the client’s timeout, not a hang', async () => {
    const started = Date.now();
    const q = await b.request('POST', `${C}/keys/query`, { token: bob.accessToken, body: { device_keys: { '@x:slow.test': [] }, timeout: 800 } });
    expectStatus(q, 200);
    assert.ok(q.body.failures['slow.test']);
    assert.ok(Date.now() - started < 6000, `answered after ${Date.now() - started} ms`);
    const c = await b.request('POST', `${C}/keys/claim`, { token: bob.accessToken, body: { one_time_keys: { '@x:slow.test': { D: 'signed_curve25519' } }, timeout: 800 } });
    expectStatus(c, 200);
    assert.ok(c.body.failures['slow.test']);
  });

  it('/hierarchy shows a space with its children as b.test may see them', async () => {
    const space = await createRoom(a, alice, { preset: 'public_chat', name: 'Space', creation_content: { type: 'm.space' } });
    const open = await createRoom(a, alice, { preset: 'public_chat', name: 'Open child' });
    const closed = await createRoom(a, alice, { preset: 'private_chat', name: 'Closed child' });
    for (const child of [open, closed, '!unknown:a.test']) {
      expectStatus(await a.request('PUT', `${C}/rooms/${e(space)}/state/m.space.child/${e(child)}`, { token: alice.accessToken, body: { via: ['a.test'], suggested: child === open } }), 200);
    }
    const viaB = b.hs.ctx.services.federation.client;
    const got = await viaB.request<any>('a.test', { method: 'GET', path: `${F}/hierarchy/${e(space)}` });
    assert.equal(got.room.room_id, space);
    assert.equal(got.room.room_type, 'm.space');
    assert.equal(got.room.children_state.length, 3);
    assert.deepEqual(got.children.map((c: any) => c.name), ['Open child']);
    assert.deepEqual(got.inaccessible_children, [closed]);
    const suggested = await viaB.request<any>('a.test', { method: 'GET', path: `${F}/hierarchy/${e(space)}?suggested_only=true` });
    assert.deepEqual(suggested.room.children_state.map((c: any) => c.state_key), [open]);
    assert.deepEqual(suggested.inaccessible_children, []);
    await assert.rejects(viaB.request('a.test', { method: 'GET', path: `${F}/hierarchy/${e(closed)}` }), (err: any) => err.status === 404);
  });

  it('/user/devices answers for local users only, with a stream_id and the devices', async () => {
    const viaB = b.hs.ctx.services.federation.client;
    const got = await viaB.request<any>('a.test', { method: 'GET', path: `${F}/user/devices/${e(alice.userId)}` });
    assert.equal(got.user_id, alice.userId);
    assert.equal(typeof got.stream_id, 'number');
    assert.ok(got.devices.some((d: any) => d.device_id === alice.deviceId));
    await assert.rejects(viaB.request('a.test', { method: 'GET', path: `${F}/user/devices/${e(bob.userId)}` }), (err: any) => err.status === 400);
    await assert.rejects(viaB.request('a.test', { method: 'GET', path: `${F}/user/devices/${e('@ghost:a.test')}` }), (err: any) => err.status === 404);
  });
});
