// HTTPS served by Hearth itself (config `tls`): client and federation APIs on one TLS listener,
// reached by another Hearth over federation (its resolve map says https, verify_tls off for the
// self-signed certificate), and the config mistakes reported by key.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/validate.js';
import type { TestServer } from '../helpers/server.js';
import { startTestServer } from '../helpers/server.js';
import { C, createRoom, e, expectStatus } from '../rooms/room-helpers.js';
import { freePort } from './federation-helpers.js';

let dir: string;
let cert: string;
let key: string;
let a: TestServer;
let b: TestServer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-tls-'));
  cert = join(dir, 'tls.crt');
  key = join(dir, 'tls.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ed25519', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const [pa, pb] = [await freePort(), await freePort()];
  const resolve = { 'a.test': `https://127.0.0.1:${pa}`, 'b.test': `http://127.0.0.1:${pb}` };
  a = await startTestServer({ serverName: 'a.test', config: { listen: `127.0.0.1:${pa}`, tls: { certificate_path: cert, private_key_path: key }, federation: { resolve, verify_tls: false } } });
  b = await startTestServer({ serverName: 'b.test', config: { listen: `127.0.0.1:${pb}`, federation: { resolve, verify_tls: false } } });
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

test('the client and federation APIs are served over HTTPS on one listener', async () => {
  assert.ok(a.url.startsWith('https://'), a.url);
  const versions = await a.request('GET', '/_matrix/client/versions');
  expectStatus(versions, 200);
  const fedVersion = await a.request('GET', '/_matrix/federation/v1/version');
  expectStatus(fedVersion, 200);
  const keys = await a.request('GET', '/_matrix/key/v2/server');
  expectStatus(keys, 200);
  assert.equal(keys.body.server_name, 'a.test');
  // Plain HTTP is not answered on the TLS port.
  await assert.rejects(fetch(a.url.replace('https://', 'http://') + '/_matrix/client/versions').then((r) => r.json()));
});

test('another server joins a room over federation on HTTPS', async () => {
  const alice = await a.registerUser('alice');
  const bob = await b.registerUser('bob');
  const room = await createRoom(a, alice, { preset: 'public_chat' });
  expectStatus(await b.request('POST', `${C}/join/${e(room)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
  const members = await a.request('GET', `${C}/rooms/${e(room)}/joined_members`, { token: alice.accessToken });
  expectStatus(members, 200);
  assert.ok(members.body.joined[bob.userId]);
});

test('tls paths are checked when the config is loaded', () => {
  const file = join(dir, 'hearth.yaml');
  const write = (tls: Record<string, unknown>) => writeFileSync(file, YAML.stringify({ data_dir: dir, tls }));
  write({ certificate_path: cert });
  assert.throws(() => loadConfig({ file, env: {} }), (err: unknown) => err instanceof ConfigError && err.key === 'tls.private_key_path');
  write({ certificate_path: join(dir, 'missing.crt'), private_key_path: key });
  assert.throws(() => loadConfig({ file, env: {} }), (err: unknown) => err instanceof ConfigError && err.key === 'tls.certificate_path');
  write({ certificate_path: cert, private_key_path: key });
  assert.ok(loadConfig({ file, env: {} }).tls?.cert.length);
});
