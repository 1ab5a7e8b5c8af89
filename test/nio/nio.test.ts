/**
 * A second client library against Hearth: Debian's python3-matrix-nio drives
 * rooms, messages, an edit, a reaction, room state, a leave and (with
 * python3-olm) an encrypted DM. test/nio/scenarios.py checks what nio sees and
 * prints it; this test checks that output again and the server's own view.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const PYTHON = '/usr/bin/python3';
// Compiled to dist/test/nio/; the script stays in the source tree.
const SCRIPT = fileURLToPath(new URL('../../../test/nio/scenarios.py', import.meta.url));
const hasNio = spawnSync(PYTHON, ['-c', 'import nio'], { stdio: 'ignore' }).status === 0;
const hasOlm = hasNio && spawnSync(PYTHON, ['-c', 'import nio.crypto, sys; sys.exit(0 if nio.crypto.ENCRYPTION_ENABLED else 1)'], { stdio: 'ignore' }).status === 0;

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the scenarios asynchronously: the server answers from this same process. */
function runScenarios(url: string, users: Record<string, TestUser>, names: string[]): Promise<RunResult> {
  const creds = Object.fromEntries(Object.entries(users).map(([k, u]) => [k, { user_id: u.userId, password: u.password }]));
  return new Promise((resolve) => {
    execFile(PYTHON, [SCRIPT, url, JSON.stringify(creds), ...names], { timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function parseResult(r: RunResult): any {
  assert.equal(r.code, 0, `scenarios failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `no RESULT line in:\n${r.stdout}`);
  return JSON.parse(line.slice('RESULT '.length));
}

describe('matrix-nio drives Hearth', { skip: hasNio ? false : `${PYTHON} cannot import nio (apt-get install python3-matrix-nio): the nio scenarios cannot run` }, () => {
  let s: TestServer;
  let users: Record<string, TestUser>;

  before(async () => {
    s = await startTestServer();
    users = {
      alice: await s.registerUser('nio_alice'),
      bob: await s.registerUser('nio_bob'),
      carol: await s.registerUser('nio_carol'),
      dave: await s.registerUser('nio_dave'),
    };
  });
  after(() => s?.stop());

  it('rooms: create, invite, join, ordered messages, edit, reaction, name and topic, leave', async () => {
    const res = parseResult(await runScenarios(s.url, users, ['rooms'])).rooms;
    assert.deepEqual(res.order, ['one', 'two', 'three', '* two (edited)']);
    assert.deepEqual(res.messages_backwards, ['* two (edited)', 'three', 'two', 'one']);
    assert.equal(res.name, 'Renamed by nio');
    assert.equal(res.topic, 'second topic');

    // The server's own view agrees: the edit replaced 'two', the reaction counts once, Bob has left.
    const room = encodeURIComponent(res.room_id);
    const tok = users.alice.accessToken;
    const two = await s.request('GET', `/_matrix/client/v3/rooms/${room}/event/${encodeURIComponent(res.sent[1])}`, { token: tok });
    assert.equal(two.status, 200);
    assert.equal(two.body.unsigned?.['m.relations']?.['m.replace']?.event_id, res.edit);
    const ann = await s.request('GET', `/_matrix/client/v1/rooms/${room}/relations/${encodeURIComponent(res.sent[0])}/m.annotation`, { token: tok });
    assert.equal(ann.status, 200);
    assert.deepEqual(ann.body.chunk.map((e: any) => e.event_id), [res.reaction]);
    const bob = await s.request('GET', `/_matrix/client/v3/rooms/${room}/state/m.room.member/${encodeURIComponent(users.bob.userId)}`, { token: tok });
    assert.equal(bob.body.membership, 'leave');
    const name = await s.request('GET', `/_matrix/client/v3/rooms/${room}/state/m.room.name/`, { token: tok });
    assert.equal(name.body.name, 'Renamed by nio');
  });

  it('a thread reply summarised on its root; a room upgrade the other member follows to the new room', async () => {
    const res = parseResult(await runScenarios(s.url, users, ['upgrade_thread'])).upgrade_thread;
    // The server's own view agrees: the old room is tombstoned, dave is in the new room, the thread has the reply.
    const tok = users.alice.accessToken;
    const tombstone = await s.request('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(res.room_id)}/state/m.room.tombstone/`, { token: tok });
    assert.equal(tombstone.body.replacement_room, res.new_room);
    const dave = await s.request('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(res.new_room)}/state/m.room.member/${encodeURIComponent(users.dave.userId)}`, { token: tok });
    assert.equal(dave.body.membership, 'join');
    const threads = await s.request('GET', `/_matrix/client/v1/rooms/${encodeURIComponent(res.room_id)}/threads`, { token: tok });
    assert.deepEqual(threads.body.chunk.map((e: any) => e.event_id), [res.root]);
  });

  it('e2ee: an encrypted DM between two nio clients decrypts', { skip: hasOlm ? false : 'python3-olm is not installed: nio has no E2EE here' }, async () => {
    const res = parseResult(await runScenarios(s.url, users, ['e2ee'])).e2ee;
    assert.equal(res.decrypted, true);
    assert.equal(res.body, 'secret from carol');

    // On the server the message is ciphertext only.
    const ev = await s.request('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(res.room_id)}/event/${encodeURIComponent(res.event_id)}`, {
      token: users.carol.accessToken,
    });
    assert.equal(ev.status, 200);
    assert.equal(ev.body.type, 'm.room.encrypted');
    assert.equal(ev.body.content.algorithm, 'm.megolm.v1.aes-sha2');
    assert.ok(!JSON.stringify(ev.body).includes('secret from carol'));
  });
});
