/**
 * A third-party invite across servers: alice on a.test invites an address; bob on b.test binds
 * it; the identity server's onbind reaches b.test, which asks a.test to issue the invite through
 * `exchange_third_party_invite`; bob gets the invite on b.test and joins over federation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateSigningKey } from '../../src/core/signing.js';
import { eventually, signedRequest, startPair, type Pair } from '../federation/federation-helpers.js';
import type { TestUser } from '../helpers/server.js';
import { FakeIdentityServer, ID_TOKEN } from './fake-identity-server.js';

const CLIENT = '/_matrix/client/v3';
let pair: Pair;
let ids: FakeIdentityServer;
const savedAllow = process.env.HEARTH_OUTBOUND_ALLOW;

before(async () => {
  process.env.HEARTH_OUTBOUND_ALLOW = '127.0.0.1/32';
  ids = new FakeIdentityServer((name) => (name === 'a.test' ? pair.a.url : pair.b.url));
  await ids.start();
  const identity_server = { trusted: [ids.name], resolve: { [ids.name]: ids.url } };
  pair = await startPair({}, { a: { identity_server }, b: { identity_server } });
});
after(async () => {
  await pair.stop();
  await ids.close();
  if (savedAllow === undefined) delete process.env.HEARTH_OUTBOUND_ALLOW;
  else process.env.HEARTH_OUTBOUND_ALLOW = savedAllow;
});

/** A private room of `inviter` on a.test with a third-party invite of `address` stored at the identity server. */
async function roomInvitingAddress(inviter: TestUser, address: string): Promise<string> {
  const created = await pair.a.request('POST', `${CLIENT}/createRoom`, { token: inviter.accessToken, body: { preset: 'private_chat' } });
  const roomId = created.body.room_id as string;
  const invited = await pair.a.request('POST', `${CLIENT}/rooms/${encodeURIComponent(roomId)}/invite`, {
    token: inviter.accessToken,
    body: { id_server: ids.name, id_access_token: ID_TOKEN, medium: 'email', address },
  });
  assert.equal(invited.status, 200, JSON.stringify(invited.body));
  return roomId;
}

/** `userId`'s member event in `roomId` as a.test holds it, read by `token`. */
function memberOnA(roomId: string, userId: string, token: string) {
  return pair.a.request('GET', `${CLIENT}/rooms/${encodeURIComponent(roomId)}/state/m.room.member/${encodeURIComponent(userId)}`, { token });
}

describe('exchange_third_party_invite', () => {
  it('the invitee on another server binds the address; the inviting server issues the invite; the invitee joins', async () => {
    const alice = await pair.a.registerUser('xalice');
    const bob = await pair.b.registerUser('xbob');
    const roomId = await roomInvitingAddress(alice, 'bob@example.org');
    assert.ok(ids.invites.some((i) => i.room_id === roomId));

    ids.sessions.set('sid-bob', { client_secret: 'cs-bob', address: 'bob@example.org' });
    const bound = await pair.b.request('POST', `${CLIENT}/account/3pid/bind`, {
      token: bob.accessToken,
      body: { sid: 'sid-bob', client_secret: 'cs-bob', id_server: ids.name, id_access_token: ID_TOKEN },
    });
    assert.equal(bound.status, 200, JSON.stringify(bound.body));

    const invite = await memberOnA(roomId, bob.userId, alice.accessToken);
    assert.equal(invite.body.membership, 'invite', JSON.stringify(invite.body));
    assert.equal(invite.body.third_party_invite.signed.mxid, bob.userId);

    // b.test holds the invite for bob, who sees it in /sync and joins through a.test.
    await eventually(async () => {
      const sync = await pair.b.request('GET', `${CLIENT}/sync?timeout=0`, { token: bob.accessToken });
      return sync.body.rooms?.invite?.[roomId] !== undefined;
    }, 'the invite in bob’s sync');
    const joined = await pair.b.request('POST', `${CLIENT}/join/${encodeURIComponent(roomId)}?server_name=a.test`, { token: bob.accessToken, body: {} });
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    await eventually(async () => {
      return (await memberOnA(roomId, bob.userId, alice.accessToken)).body.membership === 'join';
    }, 'bob joined, as a.test sees it');
  });

  it('an invitee on another server joins with the proof in hand: its server has the inviting server issue the invite, then joins', async () => {
    const alice = await pair.a.registerUser('xalice3');
    const dora = await pair.b.registerUser('xdora');
    const roomId = await roomInvitingAddress(alice, 'dora@example.org');
    const stored = ids.invites.find((i) => i.room_id === roomId)!;
    const proof = ids.signedFor(dora.userId, stored.token, undefined, alice.userId);
    const joined = await pair.b.request('POST', `${CLIENT}/join/${encodeURIComponent(roomId)}?via=a.test`, { token: dora.accessToken, body: { third_party_signed: proof } });
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    await eventually(async () => {
      return (await memberOnA(roomId, dora.userId, alice.accessToken)).body.membership === 'join';
    }, 'dora joined, as a.test sees it');
    // A forged proof: a.test refuses to issue the invite, and b.test passes its refusal on.
    const eve = await pair.b.registerUser('xeve');
    const forged = await pair.b.request('POST', `${CLIENT}/join/${encodeURIComponent(roomId)}?via=a.test`, {
      token: eve.accessToken,
      body: { third_party_signed: ids.signedFor(eve.userId, stored.token, generateSigningKey('0'), alice.userId) },
    });
    assert.equal(forged.status, 403, JSON.stringify(forged.body));
  });

  it('exchange_third_party_invite refuses a proof signed by another key and a sender of another server', async () => {
    const alice = await pair.a.registerUser('xalice2');
    const created = await pair.a.request('POST', `${CLIENT}/createRoom`, { token: alice.accessToken, body: {} });
    const roomId = created.body.room_id as string;
    await pair.a.request('POST', `${CLIENT}/rooms/${encodeURIComponent(roomId)}/invite`, {
      token: alice.accessToken,
      body: { id_server: ids.name, id_access_token: ID_TOKEN, medium: 'email', address: 'carl@example.org' },
    });
    const stored = ids.invites.find((i) => i.room_id === roomId)!;
    const carl = await pair.b.registerUser('xcarl');
    const path = `/_matrix/federation/v1/exchange_third_party_invite/${encodeURIComponent(roomId)}`;
    const exchange = (signed: Record<string, unknown>, sender = alice.userId) => {
      const body = { type: 'm.room.member', room_id: roomId, sender, state_key: carl.userId, content: { membership: 'invite', third_party_invite: { display_name: '', signed } } };
      return signedRequest(pair.a, 'PUT', path, { origin: 'b.test', key: pair.b.hs.ctx.signingKey, body });
    };
    const forged = await exchange(ids.signedFor(carl.userId, stored.token, generateSigningKey('0')));
    assert.equal(forged.status, 403, JSON.stringify(forged.body));
    const notLocal = await exchange(ids.signedFor(carl.userId, stored.token), '@someone:b.test');
    assert.equal(notLocal.status, 400);
    const unsigned = await pair.a.request('PUT', path, { body: {} });
    assert.equal(unsigned.status, 401);
    const m = await memberOnA(roomId, carl.userId, alice.accessToken);
    assert.equal(m.status, 404);
    // The genuine proof goes through.
    const ok = await exchange(ids.signedFor(carl.userId, stored.token));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });
});
