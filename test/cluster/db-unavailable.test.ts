import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { freshDatabase, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { NEEDS_PG } from './cluster-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A TCP relay to PostgreSQL that can be cut: every connection through it dropped and new ones
 * refused, as when the primary dies and before a new one takes over.
 */
class CuttableRelay {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', resolve);
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/**
 * While the database is out of reach (a failover, a cut link), a request that needs it is answered
 * 503 with a Matrix error and Retry-After: a temporary condition worth retrying, here or through
 * another node, not a server bug (500).
 */
describe('requests while the database is out of reach', { skip: NEEDS_PG }, () => {
  let relay: CuttableRelay;
  let fresh: { url: string; drop(): Promise<void> };
  let s: TestServer;
  let alice: TestUser;
  let roomId: string;

  before(async () => {
    fresh = await freshDatabase();
    const target = new URL(fresh.url);
    relay = new CuttableRelay({ host: target.hostname, port: Number(target.port || 5432) });
    await relay.open();
    const viaRelay = new URL(fresh.url);
    viaRelay.port = String(relay.port);
    s = await startTestServer({ config: { database: { url: viaRelay.toString(), pool_size: 5 } } });
    alice = await s.registerUser('alice');
    const created = await s.request('POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: {} });
    assert.equal(created.status, 200);
    roomId = created.body.room_id;
  });
  after(async () => {
    // The server stops cleanly only with its database reachable.
    await relay?.open();
    await s?.stop();
    await relay?.cut();
    await fresh?.drop();
  });

  const send = (txn: string) =>
    s.request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: txn },
    });

  test('a write is answered 503 M_UNKNOWN with Retry-After, and succeeds once the database is back', async () => {
    assert.equal((await send('before')).status, 200);
    await relay.cut();
    const refused = await send('during');
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.errcode, 'M_UNKNOWN');
    const res = await fetch(`${s.url}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/during-raw`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${alice.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ msgtype: 'm.text', body: 'during-raw' }),
    });
    assert.equal(res.status, 503);
    assert.ok(Number(res.headers.get('retry-after')) >= 1, `Retry-After: ${res.headers.get('retry-after')}`);

    await relay.open();
    const end = Date.now() + 15_000;
    let last = await send('during');
    while (last.status !== 200 && Date.now() < end) {
      await sleep(200);
      last = await send('during');
    }
    assert.equal(last.status, 200, `the retried write succeeds once the database is back: ${JSON.stringify(last.body)}`);
  });

});
