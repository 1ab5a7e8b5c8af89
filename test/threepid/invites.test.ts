/**
 * Identity servers and third-party invites, end to end: a fake identity server started here
 * (its own ed25519 key) answers lookups, stores invites and calls the homeserver's `onbind`;
 * binds and unbinds go through `/account/3pid/bind` and `/unbind`; invites by address through
 * matrix-js-sdk's inviteByThreePid and createRoom's invite_3pid; the join follows the onbind.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MatrixClient } from 'matrix-js-sdk';
import { generateSigningKey } from '../../src/core/signing.js';
import { sdk } from '../helpers/matrix-client.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { FakeIdentityServer, ID_TOKEN } from './fake-identity-server.js';

const CLIENT = '/_matrix/client/v3';
let server: TestServer;
let ids: FakeIdentityServer;
const savedAllow = process.env.HEARTH_OUTBOUND_ALLOW;

before(async () => {
  // The identity server is on loopback, which outbound requests may reach only when allowed.
  process.env.HEARTH_OUTBOUND_ALLOW = '127.0.0.1/32';
  ids = new FakeIdentityServer(() => server.url);
  await ids.start();
  server = await startTestServer({ config: { identity_server: { trusted: [ids.name], resolve: { [ids.name]: ids.url } } } });
});
after(async () => {
  await server.stop();
  await ids.close();
  if (savedAllow === undefined) delete process.env.HEARTH_OUTBOUND_ALLOW;
  else process.env.HEARTH_OUTBOUND_ALLOW = savedAllow;
});

/** A client that knows the identity server, as Element does (not syncing: only requests). */
async function client(u: TestUser): Promise<MatrixClient> {
  const { createClient } = await sdk();
  return createClient({
    baseUrl: server.url,
    idBaseUrl: ids.url,
    userId: u.userId,
    accessToken: u.accessToken,
    identityServer: { getAccessToken: async () => ID_TOKEN },
  });
}

async function member(roomId: string, userId: string, token: string) {
  return server.request('GET', `${CLIENT}/rooms/${encodeURIComponent(roomId)}/state/m.room.member/${encodeURIComponent(userId)}`, { token });
}

async function createRoom(u: TestUser, body: Record<string, unknown> = {}): Promise<string> {
  const res = await server.request('POST', `${CLIENT}/createRoom`, { token: u.accessToken, body });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.room_id;
}

describe('binds at an identity server', () => {
  it('/account/3pid/bind binds through the identity server; /unbind asks it, signed by this server', async () => {
    const dave = await server.registerUser('ti_dave');
    const c = await client(dave);
    ids.sessions.set('sid-dave', { client_secret: 'cs-dave', address: 'dave@example.org' });
    await c.bindThreePid({ sid: 'sid-dave', client_secret: 'cs-dave', id_server: ids.name, id_access_token: ID_TOKEN });
    assert.equal(ids.bindings.get('dave@example.org'), dave.userId);

    // The identity server's own error is passed on.
    const bad = await server.request('POST', `${CLIENT}/account/3pid/bind`, {
      token: dave.accessToken,
      body: { sid: 'unknown', client_secret: 'x', id_server: ids.name, id_access_token: ID_TOKEN },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_SESSION_NOT_VALIDATED');
    const untrusted = await server.request('POST', `${CLIENT}/account/3pid/bind`, {
      token: dave.accessToken,
      body: { sid: 'sid-dave', client_secret: 'cs-dave', id_server: 'evil.example', id_access_token: ID_TOKEN },
    });
    assert.equal(untrusted.status, 400);
    assert.equal(untrusted.body.errcode, 'M_SERVER_NOT_TRUSTED');

    const res = await c.unbindThreePid('email', 'dave@example.org');
    assert.equal(res.id_server_unbind_result, 'success');
    assert.equal(ids.bindings.has('dave@example.org'), false);
    const last = ids.unbinds.at(-1)!;
    assert.match(last.authorization, /^X-Matrix origin="localhost",destination="127\.0\.0\.1:\d+",key="ed25519:[^"]+",sig="[^"]+"$/);
    assert.deepEqual(last.body, { mxid: dave.userId, threepid: { medium: 'email', address: 'dave@example.org' } });
    // Once unbound, nothing more is known to unbind.
    assert.equal((await c.unbindThreePid('email', 'dave@example.org')).id_server_unbind_result, 'no-support');
  });

  it('deactivation unbinds what was bound through this server', async () => {
    const kim = await server.registerUser('ti_kim');
    ids.sessions.set('sid-kim', { client_secret: 'cs-kim', address: 'hal3@example.org' });
    await (await client(kim)).bindThreePid({ sid: 'sid-kim', client_secret: 'cs-kim', id_server: ids.name, id_access_token: ID_TOKEN });
    const first = await server.request('POST', `${CLIENT}/account/deactivate`, { token: kim.accessToken, body: {} });
    const res = await server.request('POST', `${CLIENT}/account/deactivate`, {
      token: kim.accessToken,
      body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: kim.userId }, password: kim.password, session: first.body.session } },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.id_server_unbind_result, 'success');
    assert.equal(ids.bindings.has('hal3@example.org'), false);
  });
});

describe('outbound guard', () => {
  it('an identity server on a private address is not contacted unless HEARTH_OUTBOUND_ALLOW admits it', async () => {
    delete process.env.HEARTH_OUTBOUND_ALLOW;
    let guarded: TestServer | undefined;
    try {
      guarded = await startTestServer({ config: { identity_server: { trusted: [ids.name], resolve: { [ids.name]: ids.url } } } });
    } finally {
      process.env.HEARTH_OUTBOUND_ALLOW = '127.0.0.1/32';
    }
    try {
      const u = await guarded.registerUser('ti_guarded');
      ids.sessions.set('sid-guarded', { client_secret: 'cs', address: 'guarded@example.org' });
      const res = await guarded.request('POST', `${CLIENT}/account/3pid/bind`, {
        token: u.accessToken,
        body: { sid: 'sid-guarded', client_secret: 'cs', id_server: ids.name, id_access_token: ID_TOKEN },
      });
      assert.equal(res.status, 502);
      assert.match(res.body.error, /Refusing to connect to 127\.0\.0\.1/);
      assert.equal(ids.bindings.has('guarded@example.org'), false);
    } finally {
      await guarded.stop();
    }
  });
});

describe('third-party invites', () => {
  it('an address bound to a user: inviteByThreePid invites that user', async () => {
    const alice = await server.registerUser('ti_alice1');
    const frank = await server.registerUser('ti_frank');
    ids.bindings.set('frank@example.org', frank.userId);
    const roomId = await createRoom(alice);
    await (await client(alice)).inviteByThreePid(roomId, 'email', 'frank@example.org');
    const m = await member(roomId, frank.userId, alice.accessToken);
    assert.equal(m.body.membership, 'invite');
    assert.equal(m.body.third_party_invite, undefined);
  });

  it('an unbound address: store-invite and m.room.third_party_invite; the bind brings the signed invite; the invitee joins', async () => {
    const alice = await server.registerUser('ti_alice2');
    const roomId = await createRoom(alice, { name: 'Garden' });
    await (await client(alice)).inviteByThreePid(roomId, 'email', 'erin@example.org');

    const stored = ids.invites.find((i) => i.address === 'erin@example.org' && i.room_id === roomId)!;
    assert.ok(stored, 'the identity server stored the invite');
    assert.equal(stored.sender, alice.userId);
    assert.equal(stored.body.room_name, 'Garden');
    const tpi = await server.request('GET', `${CLIENT}/rooms/${encodeURIComponent(roomId)}/state/m.room.third_party_invite/${encodeURIComponent(stored.token)}`, { token: alice.accessToken });
    assert.equal(tpi.status, 200);
    assert.equal(tpi.body.public_key, ids.publicKey);
    assert.equal(tpi.body.key_validity_url, `${ids.url}/_matrix/identity/v2/pubkey/isvalid`);
    assert.deepEqual(tpi.body.public_keys, [{ public_key: ids.publicKey, key_validity_url: `${ids.url}/_matrix/identity/v2/pubkey/isvalid` }]);

    // Erin signs up and binds the address: the identity server calls onbind, and alice's invite follows.
    const erin = await server.registerUser('ti_erin');
    ids.sessions.set('sid-erin', { client_secret: 'cs-erin', address: 'erin@example.org' });
    const checksBefore = ids.validityChecks.length;
    await (await client(erin)).bindThreePid({ sid: 'sid-erin', client_secret: 'cs-erin', id_server: ids.name, id_access_token: ID_TOKEN });
    const m = await member(roomId, erin.userId, alice.accessToken);
    assert.equal(m.status, 200, JSON.stringify(m.body));
    assert.equal(m.body.membership, 'invite');
    assert.equal(m.body.third_party_invite.display_name, tpi.body.display_name);
    assert.equal(m.body.third_party_invite.signed.mxid, erin.userId);
    assert.equal(m.body.third_party_invite.signed.token, stored.token);
    assert.ok(ids.validityChecks.length > checksBefore, 'the inviting server asked whether the key is still valid');

    const joined = await server.request('POST', `${CLIENT}/rooms/${encodeURIComponent(roomId)}/join`, { token: erin.accessToken, body: {} });
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    assert.equal((await member(roomId, erin.userId, alice.accessToken)).body.membership, 'join');
  });

  it('a forged proof (another key) or a revoked key invites nobody', async () => {
    const alice = await server.registerUser('ti_alice3');
    const roomId = await createRoom(alice);
    await (await client(alice)).inviteByThreePid(roomId, 'email', 'gina@example.org');
    const stored = ids.invites.find((i) => i.address === 'gina@example.org')!;
    const gina = await server.registerUser('ti_gina');
    const onbind = (signed: Record<string, unknown>) =>
      server.request('PUT', '/_matrix/federation/v1/3pid/onbind', {
        body: { medium: 'email', address: 'gina@example.org', mxid: gina.userId, invites: [{ medium: 'email', address: 'gina@example.org', mxid: gina.userId, room_id: roomId, sender: alice.userId, signed }] },
      });
    assert.equal((await onbind(ids.signedFor(gina.userId, stored.token, generateSigningKey('0')))).status, 200);
    assert.equal((await member(roomId, gina.userId, alice.accessToken)).status, 404, 'forged: no invite');
    ids.revoked = true;
    try {
      assert.equal((await onbind(ids.signedFor(gina.userId, stored.token))).status, 200);
      assert.equal((await member(roomId, gina.userId, alice.accessToken)).status, 404, 'revoked key: no invite');
    } finally {
      ids.revoked = false;
    }
    assert.equal((await onbind(ids.signedFor(gina.userId, stored.token))).status, 200);
    assert.equal((await member(roomId, gina.userId, alice.accessToken)).body.membership, 'invite');
    // An onbind for a user of another server is refused.
    const other = await server.request('PUT', '/_matrix/federation/v1/3pid/onbind', { body: { medium: 'email', address: 'x@example.org', mxid: '@x:elsewhere.test', invites: [] } });
    assert.equal(other.status, 400);
  });

  it('a join with the proof in hand (third_party_signed) issues the invite, then joins; a proof for someone else, or forged, lets nobody in', async () => {
    // spec: POST /join, third_party_signed: "the homeserver must verify that it matches a pending
    // m.room.third_party_invite event in the room, and perform key validity checking".
    const alice = await server.registerUser('ti_alice6');
    const roomId = await createRoom(alice, { preset: 'private_chat' });
    await (await client(alice)).inviteByThreePid(roomId, 'email', 'hal3@example.org');
    const stored = ids.invites.find((i) => i.address === 'hal3@example.org' && i.room_id === roomId)!;
    const hal = await server.registerUser('ti_hal');
    const ivy = await server.registerUser('ti_ivy');
    const join = (u: TestUser, proof: Record<string, unknown>) =>
      server.request('POST', `${CLIENT}/join/${encodeURIComponent(roomId)}`, { token: u.accessToken, body: { third_party_signed: proof } });

    const plain = await server.request('POST', `${CLIENT}/join/${encodeURIComponent(roomId)}`, { token: hal.accessToken, body: {} });
    assert.equal(plain.status, 403, 'a private room without the proof');
    const forHal = ids.signedFor(hal.userId, stored.token, undefined, alice.userId);
    const someoneElse = await join(ivy, forHal);
    assert.equal(someoneElse.status, 403, JSON.stringify(someoneElse.body));
    const forged = await join(hal, ids.signedFor(hal.userId, stored.token, generateSigningKey('0'), alice.userId));
    assert.equal(forged.status, 403, JSON.stringify(forged.body));
    const badSender = await join(hal, ids.signedFor(hal.userId, stored.token, undefined, 'alice'));
    assert.equal(badSender.status, 400, JSON.stringify(badSender.body));
    for (const u of [hal, ivy]) assert.equal((await member(roomId, u.userId, alice.accessToken)).status, 404, 'no member event for a refused proof');

    const checksBefore = ids.validityChecks.length;
    const joined = await join(hal, forHal);
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    assert.equal((await member(roomId, hal.userId, alice.accessToken)).body.membership, 'join');
    assert.ok(ids.validityChecks.length > checksBefore, 'the key was checked at the identity server');
    const history = await server.request('GET', `${CLIENT}/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`, { token: alice.accessToken });
    const invite = history.body.chunk.find((e: any) => e.type === 'm.room.member' && e.state_key === hal.userId && e.content.membership === 'invite');
    assert.equal(invite?.sender, alice.userId, 'the invite is alice’s');
    assert.deepEqual(invite.content.third_party_invite.signed, forHal);
  });

  it('createRoom with invite_3pid stores the invite; an untrusted identity server creates no room', async () => {
    const alice = await server.registerUser('ti_alice4');
    const roomId = await createRoom(alice, { invite_3pid: [{ id_server: ids.name, id_access_token: ID_TOKEN, medium: 'email', address: 'hal@example.org' }] });
    const stored = ids.invites.find((i) => i.address === 'hal@example.org')!;
    assert.equal(stored.room_id, roomId);
    const tpi = await server.request('GET', `${CLIENT}/rooms/${encodeURIComponent(roomId)}/state/m.room.third_party_invite/${encodeURIComponent(stored.token)}`, { token: alice.accessToken });
    assert.equal(tpi.status, 200);

    const before = (await server.request('GET', `${CLIENT}/joined_rooms`, { token: alice.accessToken })).body.joined_rooms.length;
    const refused = await server.request('POST', `${CLIENT}/createRoom`, {
      token: alice.accessToken,
      body: { invite_3pid: [{ id_server: 'evil.example', id_access_token: ID_TOKEN, medium: 'email', address: 'hal@example.org' }] },
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.errcode, 'M_SERVER_NOT_TRUSTED');
    const malformed = await server.request('POST', `${CLIENT}/createRoom`, { token: alice.accessToken, body: { invite_3pid: [{ id_server: ids.name, medium: 'email' }] } });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.errcode, 'M_MISSING_PARAM');
    assert.equal((await server.request('GET', `${CLIENT}/joined_rooms`, { token: alice.accessToken })).body.joined_rooms.length, before);
  });

  it('only members who may invite reach the identity server', async () => {
    const alice = await server.registerUser('ti_alice5');
    const ivan = await server.registerUser('ti_ivan');
    const roomId = await createRoom(alice);
    const stored = ids.invites.length;
    const res = await server.request('POST', `${CLIENT}/rooms/${encodeURIComponent(roomId)}/invite`, {
      token: ivan.accessToken,
      body: { id_server: ids.name, id_access_token: ID_TOKEN, medium: 'email', address: 'jo@example.org' },
    });
    assert.equal(res.status, 403);
    assert.equal(ids.invites.length, stored);
  });
});
