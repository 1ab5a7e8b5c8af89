import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { deviceKeys, newClientKey, sign, type ClientKey } from './helpers.js';

const V3 = '/_matrix/client/v3';

interface Identity {
  master: ClientKey;
  ssk: ClientKey;
  usk: ClientKey;
  body: { master_key: Record<string, unknown>; self_signing_key: Record<string, unknown>; user_signing_key: Record<string, unknown> };
}

function xsKey(userId: string, usage: string, k: ClientKey): Record<string, unknown> {
  return { user_id: userId, usage: [usage], keys: { [`ed25519:${k.pub}`]: k.pub } };
}

function identity(u: TestUser): Identity {
  const master = newClientKey();
  const ssk = newClientKey();
  const usk = newClientKey();
  const mk = `ed25519:${master.pub}`;
  return {
    master,
    ssk,
    usk,
    body: {
      master_key: xsKey(u.userId, 'master', master),
      self_signing_key: sign(xsKey(u.userId, 'self_signing', ssk), u.userId, mk, master),
      user_signing_key: sign(xsKey(u.userId, 'user_signing', usk), u.userId, mk, master),
    },
  };
}

describe('Cross-signing (spec: client-server-api "Cross-signing", cross_signing.yaml)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  const xsUpload = (u: TestUser, body: unknown) => server.request('POST', `${V3}/keys/device_signing/upload`, { token: u.accessToken, body });
  const sigUpload = (u: TestUser, body: unknown) => server.request('POST', `${V3}/keys/signatures/upload`, { token: u.accessToken, body });
  const query = (u: TestUser, device_keys: Record<string, string[]>) =>
    server.request('POST', `${V3}/keys/query`, { token: u.accessToken, body: { device_keys } });

  it('first upload needs no UIA; /keys/query shows master and self-signing keys to all, the user-signing key only to its owner', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const id = identity(alice);
    const res = await xsUpload(alice, id.body);
    assert.equal(res.status, 200);
    const own = await query(alice, { [alice.userId]: [] });
    assert.deepEqual(own.body.master_keys[alice.userId], id.body.master_key);
    assert.deepEqual(own.body.self_signing_keys[alice.userId], id.body.self_signing_key);
    assert.deepEqual(own.body.user_signing_keys[alice.userId], id.body.user_signing_key);
    const other = await query(bob, { [alice.userId]: [] });
    assert.deepEqual(other.body.master_keys[alice.userId], id.body.master_key);
    assert.deepEqual(other.body.self_signing_keys[alice.userId], id.body.self_signing_key);
    assert.equal(other.body.user_signing_keys[alice.userId], undefined);
    // Uploading the same keys again is idempotent (a retried request).
    assert.equal((await xsUpload(alice, id.body)).status, 200);
  });

  it('a self-signing key not signed by the master key is M_INVALID_SIGNATURE; without any master key M_MISSING_PARAM', async () => {
    const alice = await server.registerUser();
    const id = identity(alice);
    const forged = { ...id.body, self_signing_key: sign(xsKey(alice.userId, 'self_signing', id.ssk), alice.userId, `ed25519:${id.master.pub}`, newClientKey()) };
    const bad = await xsUpload(alice, forged);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errcode, 'M_INVALID_SIGNATURE');
    const noMaster = await xsUpload(alice, { self_signing_key: id.body.self_signing_key });
    assert.equal(noMaster.status, 400);
    assert.equal(noMaster.body.errcode, 'M_MISSING_PARAM');
    const wrongUser = await xsUpload(alice, { master_key: xsKey('@someone:localhost', 'master', id.master) });
    assert.equal(wrongUser.status, 400);
    assert.equal(wrongUser.body.errcode, 'M_INVALID_PARAM');
    const q = await query(alice, { [alice.userId]: [] });
    assert.equal(q.body.master_keys[alice.userId], undefined, 'nothing stored');
  });

  it('replacing an existing master key needs user-interactive auth (401 with flows, then the password)', async () => {
    const alice = await server.registerUser();
    assert.equal((await xsUpload(alice, identity(alice).body)).status, 200);
    const next = identity(alice);
    const challenge = await xsUpload(alice, next.body);
    assert.equal(challenge.status, 401);
    assert.ok(challenge.body.flows.some((f: { stages: string[] }) => f.stages.includes('m.login.password')));
    assert.equal(typeof challenge.body.session, 'string');
    const q1 = await query(alice, { [alice.userId]: [] });
    assert.notDeepEqual(q1.body.master_keys[alice.userId], next.body.master_key, 'not replaced without auth');

    const auth = {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: alice.userId },
      password: alice.password,
      session: challenge.body.session,
    };
    const done = await xsUpload(alice, { ...next.body, auth });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    const q2 = await query(alice, { [alice.userId]: [] });
    assert.deepEqual(q2.body.master_keys[alice.userId], next.body.master_key);
  });

  it('/keys/signatures/upload: a self-signing signature on own device shows in /keys/query; bad signatures are failures', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const dk = deviceKeys(alice);
    assert.equal((await server.request('POST', `${V3}/keys/upload`, { token: alice.accessToken, body: { device_keys: dk } })).status, 200);
    const id = identity(alice);
    assert.equal((await xsUpload(alice, id.body)).status, 200);

    const sskId = `ed25519:${id.ssk.pub}`;
    const signedDevice = sign(dk, alice.userId, sskId, id.ssk);
    const ok = await sigUpload(alice, { [alice.userId]: { [alice.deviceId]: signedDevice } });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.failures, {});
    const q = await query(bob, { [alice.userId]: [] });
    const sigs = q.body.device_keys[alice.userId][alice.deviceId].signatures[alice.userId];
    assert.equal(sigs[sskId], (signedDevice.signatures as Record<string, Record<string, string>>)[alice.userId][sskId]);
    assert.ok(sigs[`ed25519:${alice.deviceId}`], 'the device self-signature is kept');

    const forged = sign(dk, alice.userId, sskId, newClientKey());
    const bad = await sigUpload(alice, { [alice.userId]: { [alice.deviceId]: forged } });
    assert.equal(bad.status, 200);
    assert.equal(bad.body.failures[alice.userId][alice.deviceId].errcode, 'M_INVALID_SIGNATURE');
  });

  it("/keys/signatures/upload: a user-signing signature on another user's master key is visible only to the signer", async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const carol = await server.registerUser();
    const a = identity(alice);
    const b = identity(bob);
    assert.equal((await xsUpload(alice, a.body)).status, 200);
    assert.equal((await xsUpload(bob, b.body)).status, 200);
    const uskId = `ed25519:${a.usk.pub}`;
    const signed = sign(b.body.master_key, alice.userId, uskId, a.usk);
    const res = await sigUpload(alice, { [bob.userId]: { [b.master.pub]: signed } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.failures, {});

    const asAlice = await query(alice, { [bob.userId]: [] });
    assert.ok(asAlice.body.master_keys[bob.userId].signatures?.[alice.userId]?.[uskId], 'the signer sees it');
    const asCarol = await query(carol, { [bob.userId]: [] });
    assert.equal(asCarol.body.master_keys[bob.userId].signatures?.[alice.userId], undefined, 'others do not');
  });
});
