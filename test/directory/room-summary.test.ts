/**
 * GET /_matrix/client/v1/room_summary/{roomIdOrAlias} (room_summary.yaml, spec v1.15): by id or
 * alias, with the caller's membership; without a token only for rooms anyone may find; 404
 * M_NOT_FOUND for unknown rooms and rooms the caller may not see.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V1 = '/_matrix/client/v1';
const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

describe('room summary', () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let publicRoom: string;
  let privateRoom: string;
  let alias: string;
  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    bob = await server.registerUser();
    alias = `#summary${process.pid}:${server.serverName}`;
    publicRoom = (
      await server.request('POST', `${V3}/createRoom`, {
        token: alice.accessToken,
        body: { preset: 'public_chat', name: 'Cheese', topic: 'Tasty', room_alias_name: `summary${process.pid}`, creation_content: { type: 'm.space' } },
      })
    ).body.room_id;
    privateRoom = (
      await server.request('POST', `${V3}/createRoom`, {
        token: alice.accessToken,
        body: { preset: 'private_chat', name: 'Secret', initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }] },
      })
    ).body.room_id;
  });
  after(async () => {
    await server.stop();
  });

  it('summarises a public room by id and by alias, with the membership', async () => {
    for (const key of [publicRoom, alias]) {
      const res = await server.request('GET', `${V1}/room_summary/${enc(key)}`, { token: alice.accessToken });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.room_id, publicRoom);
      assert.equal(res.body.name, 'Cheese');
      assert.equal(res.body.topic, 'Tasty');
      assert.equal(res.body.canonical_alias, alias);
      assert.equal(res.body.join_rule, 'public');
      assert.equal(res.body.room_type, 'm.space');
      assert.equal(res.body.num_joined_members, 1);
      assert.equal(typeof res.body.room_version, 'string');
      assert.equal(res.body.membership, 'join');
    }
    const bobs = await server.request('GET', `${V1}/room_summary/${enc(publicRoom)}`, { token: bob.accessToken });
    assert.equal(bobs.status, 200);
    assert.equal(bobs.body.membership, undefined);
  });

  it('without a token: public rooms only, and no membership', async () => {
    const res = await server.request('GET', `${V1}/room_summary/${enc(publicRoom)}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.membership, undefined);
    const priv = await server.request('GET', `${V1}/room_summary/${enc(privateRoom)}`);
    assert.equal(priv.status, 404);
    assert.equal(priv.body.errcode, 'M_NOT_FOUND');
  });

  it('a private room: its members see it with the encryption, others get 404', async () => {
    const own = await server.request('GET', `${V1}/room_summary/${enc(privateRoom)}`, { token: alice.accessToken });
    assert.equal(own.status, 200);
    assert.equal(own.body.encryption, 'm.megolm.v1.aes-sha2');
    assert.equal(own.body.name, 'Secret');
    const other = await server.request('GET', `${V1}/room_summary/${enc(privateRoom)}`, { token: bob.accessToken });
    assert.equal(other.status, 404);
    assert.equal(other.body.errcode, 'M_NOT_FOUND');
    // Invited: visible, with the membership.
    await server.request('POST', `${V3}/rooms/${enc(privateRoom)}/invite`, { token: alice.accessToken, body: { user_id: bob.userId } });
    const invited = await server.request('GET', `${V1}/room_summary/${enc(privateRoom)}`, { token: bob.accessToken });
    assert.equal(invited.status, 200);
    assert.equal(invited.body.membership, 'invite');
  });

  it('unknown rooms and aliases are 404 M_NOT_FOUND', async () => {
    for (const key of ['!nowhere:localhost', '#nothing:localhost']) {
      const res = await server.request('GET', `${V1}/room_summary/${enc(key)}`, { token: alice.accessToken });
      assert.equal(res.status, 404, key);
      assert.equal(res.body.errcode, 'M_NOT_FOUND', key);
    }
  });
});
