// Server ACLs on inbound paths (server-server-api.md, "Server Access Control Lists") and a
// transaction whose body names another origin than the one that signed it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { aclAllows, compileAcl } from '../../src/federation/acl.js';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, messages, putState, sendText } from '../rooms/room-helpers.js';
import { eventually, F, startServers } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let alice: TestUser;
let bob: TestUser;
let roomId: string;

async function bodies(server: TestServer, user: TestUser): Promise<string[]> {
  const res = await messages(server, user, roomId, { dir: 'b', limit: 100 });
  expectStatus(res, 200);
  return res.body.chunk.filter((ev: any) => ev.type === 'm.room.message').map((ev: any) => ev.content.body);
}

before(async () => {
  const started = await startServers(['a.test', 'b.test']);
  [a, b] = started.servers as [TestServer, TestServer];
  stop = started.stop;
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
  roomId = await createRoom(a, alice, { preset: 'public_chat' });
  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
});
after(async () => {
  await stop();
});

test('ACL globs: deny wins, no allow list allows no one, ports are ignored, IP literals can be refused', () => {
  const acl = compileAcl({ allow: ['*.example.org', 'b.test'], deny: ['evil.example.org'], allow_ip_literals: false });
  assert.equal(aclAllows(acl, 'b.test:8448'), true);
  assert.equal(aclAllows(acl, 'chat.example.org'), true);
  assert.equal(aclAllows(acl, 'evil.example.org'), false);
  assert.equal(aclAllows(acl, 'c.test'), false);
  assert.equal(aclAllows(acl, '1.2.3.4'), false);
  assert.equal(aclAllows(acl, '[::1]:8448'), false);
  assert.equal(aclAllows(compileAcl({ deny: [] }), 'b.test'), false);
  assert.equal(aclAllows(compileAcl({ allow: ['?.test'] }), 'b.test'), true);
});

test('a transaction whose body names another origin is refused as a whole', async () => {
  await assert.rejects(
    b.hs.ctx.services.federation.client.request('a.test', { method: 'PUT', path: `${F}/send/forged-origin`, body: { origin: 'c.test', origin_server_ts: Date.now(), pdus: [] } }),
    (err: any) => err.status === 403 && err.errcode === 'M_FORBIDDEN',
  );
});

test('once the room denies b.test, its events and requests for the room are refused on a.test', async () => {
  await sendText(b, bob, roomId, 'before the acl');
  await eventually(async () => (await bodies(a, alice)).includes('before the acl'), 'the message on a.test');
  expectStatus(await putState(a, alice, roomId, 'm.room.server_acl', '', { allow: ['*'], deny: ['b.test'] }), 200);
  // b.test receives the ACL (it is still in the room) before its next event.
  await eventually(async () => {
    const res = await b.request('GET', `${C}/rooms/${e(roomId)}/state/m.room.server_acl/`, { token: bob.accessToken });
    return res.status === 200;
  }, 'the ACL on b.test');
  await sendText(b, bob, roomId, 'after the acl');
  await b.hs.ctx.services.federation.sender.idle();
  assert.ok(!(await bodies(a, alice)).includes('after the acl'));
  const client = b.hs.ctx.services.federation.client;
  for (const path of [`${F}/state_ids/${e(roomId)}?event_id=x`, `${F}/make_join/${e(roomId)}/${e('@other:b.test')}?ver=10`]) {
    await assert.rejects(client.request('a.test', { method: 'GET', path }), (err: any) => err.status === 403 && err.errcode === 'M_FORBIDDEN', path);
  }
});

test('a denied server cannot knock either: make_knock and send_knock are refused', async () => {
  // A room open to knocks: without the ACL, make_knock would hand b.test a template.
  expectStatus(await putState(a, alice, roomId, 'm.room.join_rules', '', { join_rule: 'knock' }), 200);
  const client = b.hs.ctx.services.federation.client;
  const denied = (err: any) => err.status === 403 && err.errcode === 'M_FORBIDDEN';
  const versions = ['10', '11', '12'].map((v) => `ver=${v}`).join('&');
  await assert.rejects(client.request('a.test', { method: 'GET', path: `${F}/make_knock/${e(roomId)}/${e('@knocker:b.test')}?${versions}` }), denied);
  await assert.rejects(client.request('a.test', { method: 'PUT', path: `${F}/send_knock/${e(roomId)}/${e('$knock')}`, body: {} }), denied);
});
