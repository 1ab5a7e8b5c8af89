/**
 * `hearth migrate-to-postgres`: a server used on SQLite (users, a room with messages, a media
 * upload, device and one-time keys, account data) is stopped, its database copied into an empty
 * PostgreSQL database, and a server started on PostgreSQL with the same config continues as if
 * nothing happened: the old access token works, /sync from the old next_batch replays nothing and
 * delivers what is sent next, and the history, keys, media and search are there.
 *
 * The test uses both backends itself, so it runs once, in the SQLite pass.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import YAML from 'yaml';
import { main } from '../../src/cli/main.js';
import { loadConfig } from '../../src/config/load.js';
import { MigrationRefused, migrateSqliteToPostgres } from '../../src/db/migrate-to-postgres.js';
import { ALL_MIGRATIONS, createHomeserver, type Homeserver } from '../../src/homeserver.js';
import { createLogger } from '../../src/logger.js';
import { deviceKeys, otks } from '../e2ee/helpers.js';
import { startTestServer, TEST_DB, type TestServer, type TestUser } from '../helpers/server.js';

const PG_ADMIN_URL = process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const V3 = '/_matrix/client/v3';

async function adminSql(statement: string): Promise<void> {
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(statement);
  } finally {
    await admin.end();
  }
}

/** Runs the CLI in this process with its output held back; the exit code and the printed lines. */
async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  console.error = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    return { code: await main(args), out: lines.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function call(base: string, method: string, path: string, o: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

describe('hearth migrate-to-postgres', { skip: TEST_DB === 'sqlite' ? false : 'runs once, in the SQLite pass (it uses both backends)' }, () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let roomId: string;
  let mediaId: string;
  let curveKey: string;
  let nextBatch: string;
  let pgName: string;
  let pgUrl: string;
  let configFile: string;
  const image = randomBytes(3000);
  const oldBodies = ['the quokka smiles', 'second message', 'third message'];

  before(async () => {
    server = await startTestServer();
    configFile = join(server.dataDir, 'hearth.yaml');
    alice = await server.registerUser('alice');
    bob = await server.registerUser('bob');
    const room = await server.request('POST', `${V3}/createRoom`, { token: alice.accessToken, body: { name: 'Before', invite: [bob.userId] } });
    assert.equal(room.status, 200);
    roomId = room.body.room_id;
    assert.equal((await server.request('POST', `${V3}/join/${encodeURIComponent(roomId)}`, { token: bob.accessToken, body: {} })).status, 200);
    for (const [i, body] of oldBodies.entries()) {
      const sender = i % 2 === 0 ? alice : bob;
      const sent = await server.request('PUT', `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/old${i}`, { token: sender.accessToken, body: { msgtype: 'm.text', body } });
      assert.equal(sent.status, 200);
    }
    const upload = await fetch(`${server.url}/_matrix/media/v3/upload?filename=pic.bin`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.accessToken}`, 'content-type': 'application/octet-stream' },
      body: image,
    });
    assert.equal(upload.status, 200);
    mediaId = ((await upload.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const dk = deviceKeys(alice);
    curveKey = (dk.keys as Record<string, string>)[`curve25519:${alice.deviceId}`];
    const keys = await server.request('POST', `${V3}/keys/upload`, { token: alice.accessToken, body: { device_keys: dk, one_time_keys: otks(alice, 2) } });
    assert.equal(keys.status, 200);
    const data = await server.request('PUT', `${V3}/user/${encodeURIComponent(alice.userId)}/account_data/org.example.settings`, { token: alice.accessToken, body: { theme: 'dark' } });
    assert.equal(data.status, 200);
    const sync = await server.request('GET', `${V3}/sync?timeout=0`, { token: alice.accessToken });
    assert.equal(sync.status, 200);
    nextBatch = sync.body.next_batch;

    pgName = `hearth_t_${randomBytes(6).toString('hex')}`;
    await adminSql(`create database ${pgName}`);
    const u = new URL(PG_ADMIN_URL);
    u.pathname = `/${pgName}`;
    pgUrl = u.toString();
  });

  after(async () => {
    await server?.stop();
    if (pgName) await adminSql(`drop database if exists ${pgName} with (force)`);
  });

  it('refuses while a server is running on the SQLite database, writing nothing', async () => {
    const sqlitePath = loadConfig({ file: configFile, env: {} }).paths.database!;
    await assert.rejects(migrateSqliteToPostgres({ sqlitePath, postgresUrl: pgUrl, migrations: ALL_MIGRATIONS }), (e: Error) => {
      assert.ok(e instanceof MigrationRefused);
      assert.match(e.message, /running/);
      return true;
    });
  });

  it('copies everything, and the server on PostgreSQL continues where the SQLite one stopped', async () => {
    await server.hs.stop();
    const run = await cli(['migrate-to-postgres', '--config', configFile, '--to', pgUrl]);
    assert.equal(run.code, 0, run.out);
    assert.match(run.out, /Verified \d+ tables/);
    assert.match(run.out, /events: \d+ rows?/);
    assert.match(run.out, /Media files stay in/);

    // A second run finds the target full.
    const again = await cli(['migrate-to-postgres', '--config', configFile, '--to', pgUrl]);
    assert.equal(again.code, 1);
    assert.match(again.out, /not empty/);

    const cfg = YAML.parse(readFileSync(configFile, 'utf8'));
    cfg.database.url = pgUrl;
    writeFileSync(configFile, YAML.stringify(cfg));
    const loaded = loadConfig({ file: configFile, env: {} });
    const hs: Homeserver = await createHomeserver(loaded, { logger: createLogger(loaded.config.log_level) });
    try {
      const base = await hs.start();
      assert.equal(hs.ctx.dialect, 'postgres');
      const room = encodeURIComponent(roomId);

      const whoami = await call(base, 'GET', `${V3}/account/whoami`, { token: alice.accessToken });
      assert.equal(whoami.status, 200);
      assert.equal(whoami.body.user_id, alice.userId);
      assert.equal(whoami.body.device_id, alice.deviceId);

      // Nothing sent before the move comes again.
      const quiet = await call(base, 'GET', `${V3}/sync?timeout=0&since=${encodeURIComponent(nextBatch)}`, { token: alice.accessToken });
      assert.equal(quiet.status, 200);
      assert.deepEqual(quiet.body.rooms?.join?.[roomId]?.timeline?.events ?? [], []);

      // A new message (and a state change, which takes a new state group id) arrives incrementally.
      const sent = await call(base, 'PUT', `${V3}/rooms/${room}/send/m.room.message/new1`, { token: bob.accessToken, body: { msgtype: 'm.text', body: 'after the move' } });
      assert.equal(sent.status, 200);
      const named = await call(base, 'PUT', `${V3}/rooms/${room}/state/m.room.name/`, { token: alice.accessToken, body: { name: 'After' } });
      assert.equal(named.status, 200);
      const next = await call(base, 'GET', `${V3}/sync?timeout=0&since=${encodeURIComponent(nextBatch)}`, { token: alice.accessToken });
      assert.equal(next.status, 200);
      const events = next.body.rooms.join[roomId].timeline.events as { event_id: string; content: { body?: string; name?: string } }[];
      assert.deepEqual(events.map((e) => e.event_id), [sent.body.event_id, named.body.event_id]);
      assert.equal(next.body.rooms.join[roomId].timeline.limited, false);

      // The history, in order.
      const history = await call(base, 'GET', `${V3}/rooms/${room}/messages?dir=b&limit=50`, { token: alice.accessToken });
      assert.equal(history.status, 200);
      const bodies = (history.body.chunk as { type: string; content: { body?: string } }[]).filter((e) => e.type === 'm.room.message').map((e) => e.content.body).reverse();
      assert.deepEqual(bodies, [...oldBodies, 'after the move']);

      // Keys: the device keys as uploaded, and the one-time keys still claimable.
      const query = await call(base, 'POST', `${V3}/keys/query`, { token: bob.accessToken, body: { device_keys: { [alice.userId]: [] } } });
      assert.equal(query.status, 200);
      assert.equal(query.body.device_keys[alice.userId][alice.deviceId].keys[`curve25519:${alice.deviceId}`], curveKey);
      const claim = await call(base, 'POST', `${V3}/keys/claim`, { token: bob.accessToken, body: { one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } } } });
      assert.equal(claim.status, 200);
      assert.equal(Object.keys(claim.body.one_time_keys[alice.userId][alice.deviceId]).length, 1);

      const data = await call(base, 'GET', `${V3}/user/${encodeURIComponent(alice.userId)}/account_data/org.example.settings`, { token: alice.accessToken });
      assert.deepEqual(data.body, { theme: 'dark' });

      // The media row moved; the bytes stayed in data_dir/media.
      const media = await fetch(`${base}/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, { headers: { authorization: `Bearer ${alice.accessToken}` } });
      assert.equal(media.status, 200);
      assert.deepEqual(Buffer.from(await media.arrayBuffer()), image);

      // The full-text index is rebuilt from the copied events.
      const search = await call(base, 'POST', `${V3}/search`, { token: alice.accessToken, body: { search_categories: { room_events: { search_term: 'quokka' } } } });
      assert.equal(search.status, 200);
      assert.equal(search.body.search_categories.room_events.count, 1);

      // Bob's password login still works (the hash moved as stored).
      const login = await call(base, 'POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bob' }, password: bob.password } });
      assert.equal(login.status, 200);
    } finally {
      await hs.stop();
    }
  });

  it('says what is wrong when --to is missing or not PostgreSQL', async () => {
    assert.equal((await cli(['migrate-to-postgres', '--config', configFile])).code, 2);
    const r = await cli(['migrate-to-postgres', '--config', configFile, '--to', '/tmp/other.db']);
    assert.equal(r.code, 2);
    assert.match(r.out, /--to postgres:\/\//);
  });
});
