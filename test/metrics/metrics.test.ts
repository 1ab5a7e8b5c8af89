/**
 * GET /metrics: Prometheus text from the server's own registry. Requests are counted by route
 * pattern (never the raw URL), committed events by origin, and scrape-time figures (sync waiters,
 * leases, caches, the database pool) are read from their owners.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitUntilAsync } from '../helpers/matrix-client.js';
import { startTestServer, TEST_DB, type TestServer, type TestUser } from '../helpers/server.js';

const SEND_ROUTE = '/_matrix/client/v3/rooms/:roomId/send/:eventType/:txnId';

/** The value of one sample in Prometheus text, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}

async function scrape(server: TestServer, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${server.url}/metrics`, { headers });
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return res.text();
}

describe('GET /metrics', () => {
  let server: TestServer;
  let alice: TestUser;
  let roomId: string;

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    const created = await server.request('POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: {} });
    assert.equal(created.status, 200);
    roomId = created.body.room_id;
  });
  after(() => server?.stop());

  it('counts requests by route pattern, method and status, with a latency histogram', async () => {
    const before = await scrape(server);
    const sent = await server.request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'hello' },
    });
    assert.equal(sent.status, 200);
    const missing = await server.request('GET', '/_matrix/client/v3/no/such/endpoint');
    assert.equal(missing.status, 404);
    // A browser client's CORS preflight, answered by the catch-all OPTIONS route.
    const preflight = await server.request('OPTIONS', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t2`, {
      headers: { origin: 'https://app.element.io', 'access-control-request-method': 'PUT' },
    });
    assert.equal(preflight.status, 204);
    const text = await scrape(server);

    const labels = { method: 'PUT', route: SEND_ROUTE, status: '200' };
    assert.equal((sample(text, 'hearth_http_requests_total', labels) ?? 0) - (sample(before, 'hearth_http_requests_total', labels) ?? 0), 1);
    const unmatched = { method: 'GET', route: 'unmatched', status: '404' };
    assert.equal((sample(text, 'hearth_http_requests_total', unmatched) ?? 0) - (sample(before, 'hearth_http_requests_total', unmatched) ?? 0), 1);
    const preflights = { method: 'OPTIONS', route: '*', status: '204' };
    assert.equal((sample(text, 'hearth_http_requests_total', preflights) ?? 0) - (sample(before, 'hearth_http_requests_total', preflights) ?? 0), 1);
    assert.equal(sample(text, 'hearth_http_request_duration_seconds_count', { method: 'PUT', route: SEND_ROUTE }), sample(text, 'hearth_http_requests_total', labels));
    assert.ok(sample(text, 'hearth_http_request_duration_seconds_bucket', { method: 'PUT', route: SEND_ROUTE, le: '+Inf' })! >= 1);
    // Ids never become labels: one series per route, not per room.
    assert.ok(!text.includes(roomId), 'a room id appears in the metrics');
    assert.ok(!text.includes('/no/such/endpoint'), 'an unmatched URL appears in the metrics');
  });

  it('counts committed events by origin', async () => {
    const before = sample(await scrape(server), 'hearth_events_persisted_total', { origin: 'local' }) ?? 0;
    for (const txn of ['e1', 'e2']) {
      const res = await server.request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`, {
        token: alice.accessToken,
        body: { msgtype: 'm.text', body: txn },
      });
      assert.equal(res.status, 200);
    }
    // A retried transaction is answered with the first event: nothing new is persisted.
    await server.request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/e2`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'e2' },
    });
    const text = await scrape(server);
    assert.equal(sample(text, 'hearth_events_persisted_total', { origin: 'local' }), before + 2);
    assert.equal(sample(text, 'hearth_events_persisted_total', { origin: 'remote' }), 0);
  });

  it('reports sync waiters while a long-poll waits', async () => {
    const first = await server.request('GET', '/_matrix/client/v3/sync?timeout=0', { token: alice.accessToken });
    assert.equal(first.status, 200);
    assert.equal(sample(await scrape(server), 'hearth_sync_waiters'), 0);
    const polling = server.request('GET', `/_matrix/client/v3/sync?timeout=20000&since=${first.body.next_batch}`, { token: alice.accessToken });
    await waitUntilAsync(async () => sample(await scrape(server), 'hearth_sync_waiters') === 1, 'the long-poll to be counted');
    await server.request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/wake`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'wake' },
    });
    assert.equal((await polling).status, 200);
    await waitUntilAsync(async () => sample(await scrape(server), 'hearth_sync_waiters') === 0, 'the long-poll to end');
  });

  it('reports leases, cache lookups, federation queues, the pool and process figures', async () => {
    const lease = await server.hs.ctx.leases.acquire('metrics.test');
    assert.ok(lease);
    const text = await scrape(server);
    assert.equal(sample(text, 'hearth_lease_held', { lease: 'metrics.test' }), 1);
    await server.hs.ctx.leases.release(lease);
    assert.equal(sample(await scrape(server), 'hearth_lease_held', { lease: 'metrics.test' }), undefined);

    // Every authenticated request above looked the token up: after the first, from the cache.
    assert.ok((sample(text, 'hearth_cache_lookups_total', { cache: 'access_tokens', result: 'hit' }) ?? 0) >= 1);
    assert.ok((sample(text, 'hearth_cache_lookups_total', { cache: 'room_heads', result: 'hit' }) ?? 0) >= 1);
    assert.ok((sample(text, 'hearth_cache_entries', { cache: 'events' }) ?? 0) >= 1);
    assert.equal(sample(text, 'hearth_cache_capacity', { cache: 'access_tokens' }), 10000);

    assert.equal(sample(text, 'hearth_federation_destinations', { state: 'up' }), 0);
    assert.equal(sample(text, 'hearth_federation_destinations', { state: 'backing_off' }), 0);
    assert.match(text, /# TYPE hearth_federation_queue_depth gauge/);

    if (TEST_DB === 'postgres') {
      assert.equal(sample(text, 'hearth_db_pool_size'), 5);
      assert.ok(sample(text, 'hearth_db_pool_in_use') !== undefined);
    } else {
      assert.equal(sample(text, 'hearth_db_pool_size'), undefined);
    }
    // prom-client's default metrics, in this server's registry.
    assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0);
    assert.ok(sample(text, 'nodejs_eventloop_lag_p99_seconds') !== undefined);
  });
});

describe('GET /metrics access', () => {
  it('is not served when metrics.enabled is false', async () => {
    const server = await startTestServer({ config: { metrics: { enabled: false } } });
    try {
      const res = await server.request('GET', '/metrics');
      assert.equal(res.status, 404);
      assert.equal(res.body.errcode, 'M_UNRECOGNIZED');
    } finally {
      await server.stop();
    }
  });

  it('refuses addresses outside allow_from and scrapes without the bearer token', async () => {
    const server = await startTestServer({ config: { metrics: { allow_from: ['10.0.0.0/8'] } } });
    try {
      const res = await server.request('GET', '/metrics');
      assert.equal(res.status, 403);
      assert.equal(res.body.errcode, 'M_FORBIDDEN');
    } finally {
      await server.stop();
    }
    const guarded = await startTestServer({ config: { metrics: { bearer_token: 'scrape-secret' } } });
    try {
      assert.equal((await guarded.request('GET', '/metrics')).status, 403);
      assert.equal((await guarded.request('GET', '/metrics', { headers: { authorization: 'Bearer wrong-secret' } })).status, 403);
      const text = await scrape(guarded, { authorization: 'Bearer scrape-secret' });
      assert.ok(text.includes('hearth_http_requests_total'));
    } finally {
      await guarded.stop();
    }
  });
});

describe('two servers in one process', () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    a = await startTestServer();
    b = await startTestServer();
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
  });

  it('keep independent registries', async () => {
    const user = await b.registerUser();
    const room = await b.request('POST', '/_matrix/client/v3/createRoom', { token: user.accessToken, body: {} });
    assert.equal(room.status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await b.request('GET', '/_matrix/client/versions')).status, 200);
    const versions = { method: 'GET', route: '/_matrix/client/versions', status: '200' };
    const textA = await scrape(a);
    const textB = await scrape(b);
    assert.equal(sample(textA, 'hearth_http_requests_total', versions), undefined);
    assert.equal(sample(textB, 'hearth_http_requests_total', versions), 3);
    assert.equal(sample(textA, 'hearth_events_persisted_total', { origin: 'local' }), 0);
    assert.ok((sample(textB, 'hearth_events_persisted_total', { origin: 'local' }) ?? 0) >= 5);
    // Each registry holds the default metrics once (a shared registry would refuse the second server).
    assert.equal(textA.match(/^# TYPE process_cpu_seconds_total /gm)?.length, 1);
  });
});
