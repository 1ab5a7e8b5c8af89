/**
 * Server-side key backups over real HTTP (spec: end_to_end_encryption.md "Server-side key
 * backups"; key_backup.yaml): versions, keys at the three levels, the rules for replacing a
 * stored key with a better one, etag and count, and the errors.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isBetterKey, type KeyBackupData } from '../../src/e2ee/key-backup.js';
import { startTestServer, type ApiResponse, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';
const ALG = 'm.megolm_backup.v1.curve25519-aes-sha2';
const enc = encodeURIComponent;

function key(over: Partial<KeyBackupData> = {}, tag = 'x'): KeyBackupData {
  return {
    first_message_index: 0,
    forwarded_count: 0,
    is_verified: false,
    session_data: { ephemeral: `eph-${tag}`, ciphertext: `ct-${tag}`, mac: `mac-${tag}` },
    ...over,
  };
}

describe('key backup: which stored key a new upload replaces (isBetterKey)', () => {
  it('a verified key beats an unverified one whatever its index and forwards', () => {
    assert.equal(isBetterKey(key({ is_verified: true, first_message_index: 9, forwarded_count: 9 }), key()), true);
    assert.equal(isBetterKey(key(), key({ is_verified: true, first_message_index: 9, forwarded_count: 9 })), false);
  });
  it('with the same verification, the lower first_message_index wins', () => {
    assert.equal(isBetterKey(key({ first_message_index: 1, forwarded_count: 5 }), key({ first_message_index: 2 })), true);
    assert.equal(isBetterKey(key({ first_message_index: 3 }), key({ first_message_index: 2, forwarded_count: 5 })), false);
  });
  it('then the lower forwarded_count wins, and on a tie the stored key stays', () => {
    assert.equal(isBetterKey(key({ forwarded_count: 1 }), key({ forwarded_count: 2 })), true);
    assert.equal(isBetterKey(key({ forwarded_count: 2 }), key({ forwarded_count: 1 })), false);
    assert.equal(isBetterKey(key(), key()), false);
  });
});

describe('key backup over HTTP', () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  const authData = { public_key: 'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo', signatures: {} };

  const call = (method: string, path: string, body?: unknown, user: TestUser = alice): Promise<ApiResponse> =>
    server.request(method, `${V3}${path}`, { token: user.accessToken, body });

  async function createVersion(user: TestUser = alice, data: object = authData): Promise<string> {
    const res = await call('POST', '/room_keys/version', { algorithm: ALG, auth_data: data }, user);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(typeof res.body.version, 'string');
    return res.body.version;
  }

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    bob = await server.registerUser();
  });
  after(async () => {
    await server.stop();
  });

  it('without a backup: GET /room_keys/version is 404 M_NOT_FOUND, and keys cannot be stored', async () => {
    const res = await call('GET', '/room_keys/version');
    assert.equal(res.status, 404);
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
    const put = await call('PUT', `/room_keys/keys/${enc('!r:localhost')}/s1?version=1`, key());
    assert.equal(put.status, 404);
    assert.equal(put.body.errcode, 'M_NOT_FOUND');
    const get = await call('GET', '/room_keys/keys?version=1');
    assert.equal(get.status, 404);
    assert.equal(get.body.errcode, 'M_NOT_FOUND');
  });

  it('POST creates a version; GET (latest and by version) describes it with count 0', async () => {
    const version = await createVersion();
    const latest = await call('GET', '/room_keys/version');
    assert.equal(latest.status, 200);
    assert.deepEqual(latest.body, { algorithm: ALG, auth_data: authData, count: 0, etag: latest.body.etag, version });
    assert.equal(typeof latest.body.etag, 'string');
    const byId = await call('GET', `/room_keys/version/${version}`);
    assert.deepEqual(byId.body, latest.body);
    // Another user sees none of it.
    const other = await call('GET', '/room_keys/version', undefined, bob);
    assert.equal(other.status, 404);
    const otherById = await call('GET', `/room_keys/version/${version}`, undefined, bob);
    assert.equal(otherById.status, 404);
    assert.equal(otherById.body.errcode, 'M_NOT_FOUND');
  });

  it('an unknown or malformed version is 404 M_NOT_FOUND', async () => {
    for (const v of ['999', 'abc', '0', '01']) {
      const res = await call('GET', `/room_keys/version/${v}`);
      assert.equal(res.status, 404, v);
      assert.equal(res.body.errcode, 'M_NOT_FOUND', v);
      const del = await call('DELETE', `/room_keys/version/${v}`);
      assert.equal(del.status, 404, v);
      const keys = await call('GET', `/room_keys/keys?version=${v}`);
      assert.equal(keys.status, 404, v);
    }
  });

  it('POST refuses an unknown algorithm and auth_data that is not an object', async () => {
    const a = await call('POST', '/room_keys/version', { algorithm: 'org.example.nope', auth_data: {} });
    assert.equal(a.status, 400);
    assert.equal(a.body.errcode, 'M_BAD_JSON');
    const b = await call('POST', '/room_keys/version', { algorithm: ALG, auth_data: 'x' });
    assert.equal(b.status, 400);
    assert.equal(b.body.errcode, 'M_BAD_JSON');
  });

  it('keys at all three levels: PUT, GET and DELETE with etag and count', async () => {
    const version = await createVersion();
    const r1 = '!one:localhost';
    const r2 = '!two:localhost';
    // A megolm session id is base64 and may hold '/' and '+'.
    const s1 = 'sess/one+A';
    const start = (await call('GET', '/room_keys/version')).body;
    assert.equal(start.version, version);
    assert.equal(start.count, 0);

    // One session.
    const put1 = await call('PUT', `/room_keys/keys/${enc(r1)}/${enc(s1)}?version=${version}`, key({}, 'a'));
    assert.equal(put1.status, 200, JSON.stringify(put1.body));
    assert.equal(put1.body.count, 1);
    assert.notEqual(put1.body.etag, start.etag, 'a stored key changes the etag');
    const got1 = await call('GET', `/room_keys/keys/${enc(r1)}/${enc(s1)}?version=${version}`);
    assert.equal(got1.status, 200);
    assert.deepEqual(got1.body, key({}, 'a'));

    // One room.
    const putRoom = await call('PUT', `/room_keys/keys/${enc(r1)}?version=${version}`, {
      sessions: { s2: key({}, 'b'), s3: key({ is_verified: true }, 'c') },
    });
    assert.equal(putRoom.status, 200);
    assert.equal(putRoom.body.count, 3);
    assert.notEqual(putRoom.body.etag, put1.body.etag);
    const room = await call('GET', `/room_keys/keys/${enc(r1)}?version=${version}`);
    assert.deepEqual(room.body, { sessions: { [s1]: key({}, 'a'), s2: key({}, 'b'), s3: key({ is_verified: true }, 'c') } });

    // All rooms.
    const putAll = await call('PUT', `/room_keys/keys?version=${version}`, {
      rooms: { [r2]: { sessions: { t1: key({}, 'd') } }, [r1]: { sessions: { s4: key({}, 'e') } } },
    });
    assert.equal(putAll.status, 200);
    assert.equal(putAll.body.count, 5);
    const all = await call('GET', `/room_keys/keys?version=${version}`);
    assert.deepEqual(Object.keys(all.body.rooms).sort(), [r1, r2].sort());
    assert.deepEqual(Object.keys(all.body.rooms[r1].sessions).sort(), [s1, 's2', 's3', 's4'].sort());
    assert.deepEqual(all.body.rooms[r2].sessions.t1, key({}, 'd'));

    // The version's count and etag follow the keys.
    const info = (await call('GET', `/room_keys/version/${version}`)).body;
    assert.equal(info.count, 5);
    assert.equal(info.etag, putAll.body.etag);

    // An empty room and an unknown session.
    const empty = await call('GET', `/room_keys/keys/${enc('!empty:localhost')}?version=${version}`);
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body, { sessions: {} });
    const missing = await call('GET', `/room_keys/keys/${enc(r1)}/nope?version=${version}`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.errcode, 'M_NOT_FOUND');

    // DELETE one session, one room, then everything.
    const del1 = await call('DELETE', `/room_keys/keys/${enc(r1)}/${enc(s1)}?version=${version}`);
    assert.equal(del1.status, 200);
    assert.equal(del1.body.count, 4);
    assert.notEqual(del1.body.etag, putAll.body.etag);
    const delNothing = await call('DELETE', `/room_keys/keys/${enc(r1)}/${enc(s1)}?version=${version}`);
    assert.equal(delNothing.status, 200);
    assert.deepEqual(delNothing.body, del1.body, 'deleting nothing changes nothing');
    const delRoom = await call('DELETE', `/room_keys/keys/${enc(r1)}?version=${version}`);
    assert.equal(delRoom.body.count, 1);
    const afterRoom = await call('GET', `/room_keys/keys/${enc(r1)}?version=${version}`);
    assert.deepEqual(afterRoom.body, { sessions: {} });
    const delAll = await call('DELETE', `/room_keys/keys?version=${version}`);
    assert.equal(delAll.body.count, 0);
    const none = await call('GET', `/room_keys/keys?version=${version}`);
    assert.deepEqual(none.body, { rooms: {} });
    const etags = [start.etag, put1.body.etag, putRoom.body.etag, putAll.body.etag, del1.body.etag, delRoom.body.etag, delAll.body.etag];
    assert.equal(new Set(etags).size, etags.length, `every change has a new etag: ${etags}`);
  });

  it('an upload keeps the better of the stored and the new key (spec replacement rules)', async () => {
    const version = await createVersion();
    const path = `/room_keys/keys/${enc('!rules:localhost')}/sess?version=${version}`;
    const stored = async () => (await call('GET', path)).body as KeyBackupData;

    const first = await call('PUT', path, key({ first_message_index: 5, forwarded_count: 2 }, 'first'));
    assert.equal(first.body.count, 1);
    // Worse: a higher index. Kept out, and nothing changed, so the etag stays.
    const worse = await call('PUT', path, key({ first_message_index: 6, forwarded_count: 0 }, 'worse'));
    assert.equal(worse.status, 200);
    assert.deepEqual(worse.body, first.body);
    assert.equal((await stored()).session_data.ciphertext, 'ct-first');
    // A tie: the stored key stays.
    const tie = await call('PUT', path, key({ first_message_index: 5, forwarded_count: 2 }, 'tie'));
    assert.deepEqual(tie.body, first.body);
    assert.equal((await stored()).session_data.ciphertext, 'ct-first');
    // Same index, fewer forwards: replaces.
    const fewer = await call('PUT', path, key({ first_message_index: 5, forwarded_count: 1 }, 'fewer'));
    assert.equal(fewer.body.count, 1);
    assert.notEqual(fewer.body.etag, first.body.etag);
    assert.equal((await stored()).session_data.ciphertext, 'ct-fewer');
    // Lower index: replaces even with more forwards.
    await call('PUT', path, key({ first_message_index: 2, forwarded_count: 9 }, 'lower'));
    assert.equal((await stored()).session_data.ciphertext, 'ct-lower');
    // Verified: replaces even with a higher index.
    await call('PUT', path, key({ is_verified: true, first_message_index: 50, forwarded_count: 9 }, 'verified'));
    assert.deepEqual(await stored(), key({ is_verified: true, first_message_index: 50, forwarded_count: 9 }, 'verified'));
    // Unverified never replaces verified, even from index 0.
    await call('PUT', path, key({ first_message_index: 0 }, 'unverified'));
    assert.equal((await stored()).session_data.ciphertext, 'ct-verified');
    // Between verified keys the index decides again.
    await call('PUT', path, key({ is_verified: true, first_message_index: 1 }, 'verified-lower'));
    assert.equal((await stored()).session_data.ciphertext, 'ct-verified-lower');
    const info = (await call('GET', '/room_keys/version')).body;
    assert.equal(info.count, 1, 'replacing a key does not change the count');
  });

  it('writing to a version that is not the current one is 403 M_WRONG_ROOM_KEYS_VERSION with current_version', async () => {
    const old = await createVersion();
    const current = await createVersion();
    assert.ok(Number(current) > Number(old));
    const bodies: [string, unknown][] = [
      [`/room_keys/keys/${enc('!r:localhost')}/s?version=${old}`, key()],
      [`/room_keys/keys/${enc('!r:localhost')}?version=${old}`, { sessions: { s: key() } }],
      [`/room_keys/keys?version=${old}`, { rooms: { '!r:localhost': { sessions: { s: key() } } } }],
      [`/room_keys/keys?version=12345`, { rooms: {} }],
    ];
    for (const [path, body] of bodies) {
      const res = await call('PUT', path, body);
      assert.equal(res.status, 403, path);
      assert.equal(res.body.errcode, 'M_WRONG_ROOM_KEYS_VERSION', path);
      assert.equal(res.body.current_version, current, path);
    }
    // The old version can still be read.
    const read = await call('GET', `/room_keys/keys?version=${old}`);
    assert.equal(read.status, 200);
  });

  it('PUT /room_keys/version/{version} updates auth_data only', async () => {
    const version = await createVersion();
    const signed = { ...authData, signatures: { [alice.userId]: { 'ed25519:DEV': 'sig' } } };
    const ok = await call('PUT', `/room_keys/version/${version}`, { algorithm: ALG, auth_data: signed, version });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body, {});
    assert.deepEqual((await call('GET', `/room_keys/version/${version}`)).body.auth_data, signed);
    // Without the optional version in the body.
    const ok2 = await call('PUT', `/room_keys/version/${version}`, { algorithm: ALG, auth_data: authData });
    assert.equal(ok2.status, 200);

    const wrongVersion = await call('PUT', `/room_keys/version/${version}`, { algorithm: ALG, auth_data: authData, version: '77' });
    assert.equal(wrongVersion.status, 400);
    assert.equal(wrongVersion.body.errcode, 'M_INVALID_PARAM');
    const otherKey = await call('PUT', `/room_keys/version/${version}`, { algorithm: ALG, auth_data: { public_key: 'another' } });
    assert.equal(otherKey.status, 400);
    assert.equal(otherKey.body.errcode, 'M_INVALID_PARAM');
    const unknown = await call('PUT', '/room_keys/version/4242', { algorithm: ALG, auth_data: authData });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.errcode, 'M_NOT_FOUND');
    const bobs = await call('PUT', `/room_keys/version/${version}`, { algorithm: ALG, auth_data: authData }, bob);
    assert.equal(bobs.status, 404, "another user's version is unknown to bob");
  });

  it('DELETE /room_keys/version/{version} drops the version and its keys; the previous live one becomes current', async () => {
    const older = await createVersion();
    const version = await createVersion();
    await call('PUT', `/room_keys/keys/${enc('!d:localhost')}/s?version=${version}`, key());
    const del = await call('DELETE', `/room_keys/version/${version}`);
    assert.equal(del.status, 200);
    assert.deepEqual(del.body, {});
    // Deleting it again succeeds (key_backup.yaml: "or the specified backup was previously deleted").
    const again = await call('DELETE', `/room_keys/version/${version}`);
    assert.equal(again.status, 200);
    const gone = await call('GET', `/room_keys/version/${version}`);
    assert.equal(gone.status, 404);
    const keys = await call('GET', `/room_keys/keys?version=${version}`);
    assert.equal(keys.status, 404);
    const latest = await call('GET', '/room_keys/version');
    assert.equal(latest.body.version, older);
    // A new version gets a number never used before.
    const next = await createVersion();
    assert.ok(Number(next) > Number(version));
    const put = await call('PUT', `/room_keys/keys/${enc('!d:localhost')}/s?version=${next}`, key());
    assert.equal(put.body.count, 1);
  });

  it('bad input: missing version query, malformed key data, wrong token', async () => {
    const version = (await call('GET', '/room_keys/version')).body.version as string;
    const noVersion = await call('GET', '/room_keys/keys');
    assert.equal(noVersion.status, 400);
    assert.equal(noVersion.body.errcode, 'M_MISSING_PARAM');
    const noVersionPut = await call('PUT', `/room_keys/keys/${enc('!r:localhost')}/s`, key());
    assert.equal(noVersionPut.status, 400);
    assert.equal(noVersionPut.body.errcode, 'M_MISSING_PARAM');
    const bads: unknown[] = [
      {},
      { ...key(), is_verified: 'yes' },
      { ...key(), first_message_index: -1 },
      { ...key(), first_message_index: 1.5 },
      { ...key(), forwarded_count: 1e20 },
      { ...key(), session_data: 'x' },
    ];
    for (const body of bads) {
      const res = await call('PUT', `/room_keys/keys/${enc('!r:localhost')}/s?version=${version}`, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.errcode, 'M_BAD_JSON', JSON.stringify(body));
    }
    const badRooms = await call('PUT', `/room_keys/keys?version=${version}`, { rooms: { '!r:localhost': { sessions: { s: { nope: 1 } } } } });
    assert.equal(badRooms.status, 400);
    const noSessions = await call('PUT', `/room_keys/keys/${enc('!r:localhost')}?version=${version}`, {});
    assert.equal(noSessions.status, 400);
    const anon = await server.request('GET', `${V3}/room_keys/version`);
    assert.equal(anon.status, 401);
    assert.equal(anon.body.errcode, 'M_MISSING_TOKEN');
  });

  it('concurrent uploads to one backup lose no key, and every upload moves the etag', async () => {
    const version = await createVersion(bob);
    const before = (await call('GET', '/room_keys/version', undefined, bob)).body;
    const uploads = 20;
    const perUpload = 10;
    const results = await Promise.all(
      Array.from({ length: uploads }, (_, u) => {
        const sessions: Record<string, KeyBackupData> = {};
        for (let i = 0; i < perUpload; i++) sessions[`u${u}-s${i}`] = key({}, `${u}-${i}`);
        // Half the uploads also race on one shared session, with distinct qualities.
        if (u % 2 === 0) sessions.shared = key({ first_message_index: 100 - u }, `shared-${u}`);
        return call('PUT', `/room_keys/keys/${enc('!race:localhost')}?version=${version}`, { sessions }, bob);
      }),
    );
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
    const all = await call('GET', `/room_keys/keys?version=${version}`, undefined, bob);
    const sessions = all.body.rooms['!race:localhost'].sessions;
    assert.equal(Object.keys(sessions).length, uploads * perUpload + 1);
    // The best shared key (lowest index: upload 18) won, whatever the order.
    assert.equal(sessions.shared.session_data.ciphertext, 'ct-shared-18');
    const info = (await call('GET', '/room_keys/version', undefined, bob)).body;
    assert.equal(info.count, uploads * perUpload + 1);
    // Each upload stored new keys, so each one took its own etag step.
    const etags = new Set(results.map((r) => r.body.etag));
    assert.equal(etags.size, uploads);
    assert.equal(Number(info.etag) - Number(before.etag), uploads);
    assert.deepEqual([...results.map((r) => r.body.count)].sort((a, b) => a - b).at(-1), info.count);
  });
});
