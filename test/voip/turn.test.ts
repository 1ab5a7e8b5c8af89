/**
 * GET /voip/turnServer (spec: "Voice over IP", TURN server) hands out
 * credentials for coturn's shared-secret mode; coturn, started here on
 * loopback with the same secret, allocates a relay with them and refuses
 * altered ones.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { allocate } from './turn-client.js';

const SECRET = 'turn-test-secret';
const hasCoturn = spawnSync('turnserver', ['--version'], { stdio: 'ignore' }).error === undefined;

describe('TURN credentials against coturn', { skip: hasCoturn ? false : 'coturn is not installed (apt-get install coturn): the TURN allocation test cannot run' }, () => {
  let s: TestServer;
  let user: TestUser;
  let turn: ChildProcess;
  let port: number;
  let dir: string;

  before(async () => {
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'hearth-turn-'));
    const relayLow = 50000 + Math.floor(Math.random() * 10000);
    turn = spawn(
      'turnserver',
      [
        '-n',
        `--listening-ip=127.0.0.1`,
        `--listening-port=${port}`,
        `--relay-ip=127.0.0.1`,
        `--min-port=${relayLow}`,
        `--max-port=${relayLow + 50}`,
        '--use-auth-secret',
        `--static-auth-secret=${SECRET}`,
        '--realm=hearth.test',
        '--no-tls',
        '--no-dtls',
        '--no-cli',
        `--userdb=${join(dir, 'turndb')}`,
        `--pidfile=${join(dir, 'turn.pid')}`,
        '--log-file=stdout',
      ],
      { stdio: 'ignore' },
    );
    s = await startTestServer({ config: { turn: { uris: [`turn:127.0.0.1:${port}?transport=udp`], shared_secret: SECRET, ttl: 600 } } });
    user = await s.registerUser('turn_user');
    // coturn answers once it listens.
    for (let i = 0; i < 50; i++) {
      try {
        await allocate('127.0.0.1', port, 'probe', 'probe', 200);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  after(async () => {
    turn?.kill('SIGTERM');
    await s?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('issues time-limited credentials in the shape the spec gives', async () => {
    const res = await s.request('GET', '/_matrix/client/v3/voip/turnServer', { token: user.accessToken });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.uris, [`turn:127.0.0.1:${port}?transport=udp`]);
    assert.equal(res.body.ttl, 600);
    const [expiry, who] = [res.body.username.split(':')[0], res.body.username.slice(res.body.username.indexOf(':') + 1)];
    assert.equal(who, user.userId);
    const left = Number(expiry) - Date.now() / 1000;
    assert.ok(left > 590 && left <= 601, `expires in the ttl (${left} s)`);
    const anon = await s.request('GET', '/_matrix/client/v3/voip/turnServer');
    assert.equal(anon.status, 401);
  });

  it('coturn allocates a relay with them, and refuses altered ones', async () => {
    const { body } = await s.request('GET', '/_matrix/client/v3/voip/turnServer', { token: user.accessToken });
    const ok = await allocate('127.0.0.1', port, body.username, body.password);
    assert.equal(ok.ok, true, `allocation refused: ${ok.errorCode}`);
    assert.equal(ok.relayed?.address, '127.0.0.1');
    assert.ok((ok.relayed?.port ?? 0) > 0);

    const wrong = await allocate('127.0.0.1', port, body.username, `${body.password.slice(0, -2)}AA`);
    assert.equal(wrong.ok, false);
    assert.equal(wrong.errorCode, 401);
    const expired = `${Math.floor(Date.now() / 1000) - 10}:${user.userId}`;
    const { createHmac } = await import('node:crypto');
    const stale = await allocate('127.0.0.1', port, expired, createHmac('sha1', SECRET).update(expired).digest('base64'));
    assert.equal(stale.ok, false, 'expired credentials are refused');
  });
});

describe('TURN not configured', () => {
  it('answers an empty object', async () => {
    const s = await startTestServer();
    try {
      const u = await s.registerUser('noturn');
      const res = await s.request('GET', '/_matrix/client/v3/voip/turnServer', { token: u.accessToken });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, {});
    } finally {
      await s.stop();
    }
  });
});
