import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { startTestServer, TEST_DB, type TestServer } from '../helpers/server.js';
import { NEEDS_PG } from './cluster-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('/health and /ready', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s?.stop();
  });

  test('/health answers while the process runs; /ready when the database, migrations and bus are all fine', async () => {
    const health = await s.request('GET', '/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    const ready = await s.request('GET', '/ready');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    assert.deepEqual(ready.body.checks, { database: true, migrations: true, bus: true });
    assert.ok(ready.body.nodes.includes(ready.body.node), 'the node counts itself among the live nodes');
  });

  test('the node is listed in cluster_nodes with a fresh heartbeat', async () => {
    const { nodeId } = await s.request('GET', '/health').then((r) => ({ nodeId: r.body.node as string }));
    const rows = await s.hs.ctx.db.selectFrom('cluster_nodes').select(['node_id', 'address']).execute();
    assert.ok(rows.some((r) => r.node_id === nodeId && r.address === s.url), JSON.stringify(rows));
  });
});

/** A node cut off from its database (CLUSTER.md 10, partition): not ready while cut off, ready again by itself. */
describe('a node cut off from PostgreSQL', { skip: NEEDS_PG }, () => {
  let s: TestServer;
  let admin: postgres.Sql;
  let dbName: string;
  before(async () => {
    s = await startTestServer();
    dbName = new URL(s.hs.ctx.config.database.url).pathname.slice(1);
    admin = postgres(process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', { max: 1, onnotice: () => {} });
  });
  after(async () => {
    if (TEST_DB === 'postgres') await admin.unsafe(`alter database ${dbName} allow_connections true`).catch(() => {});
    await admin?.end();
    await s?.stop();
  });

  async function until(pred: () => Promise<boolean>, ms: number, what: string): Promise<number> {
    const t0 = Date.now();
    while (!(await pred())) {
      if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
      await sleep(100);
    }
    return Date.now() - t0;
  }

  test('reports not ready while the database refuses it, and recovers when it comes back', async () => {
    assert.equal((await s.request('GET', '/ready')).status, 200);
    await admin.unsafe(`alter database ${dbName} allow_connections false`);
    await admin.unsafe(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${dbName}' and pid <> pg_backend_pid()`);
    let last: any;
    const down = await until(async () => {
      last = await s.request('GET', '/ready');
      return last.status === 503;
    }, 8000, 'not ready');
    assert.equal(last.body.checks.database, false);
    assert.equal((await s.request('GET', '/health')).status, 200, 'alive all the same');
    await admin.unsafe(`alter database ${dbName} allow_connections true`);
    const up = await until(async () => {
      last = await s.request('GET', '/ready');
      return last.status === 200;
    }, 20000, 'ready again').catch((err: Error) => {
      throw new Error(`${err.message}; last answer ${JSON.stringify(last.body)}`);
    });
    console.log(`not ready after ${down} ms; ready again ${up} ms after the database returned`);
  });
});
