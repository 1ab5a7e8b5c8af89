import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { LeaseLostError, type Lease } from '../../src/cluster/leases.js';
import { PgLeases } from '../../src/cluster/pg-leases.js';
import type { Database } from '../../src/db/connect.js';
import { createLogger } from '../../src/logger.js';
import { freshDatabase } from '../helpers/server.js';
import { NEEDS_PG, recordFigures } from './cluster-helpers.js';
import { openLeaseDb } from './lease-db.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Leases with epochs and fenced writes (CLUSTER.md 5), between nodes sharing one database. */
describe('leases shared by nodes', { skip: NEEDS_PG }, () => {
  let fresh: { url: string; drop(): Promise<void> };
  let database: Database;
  const logger = createLogger('silent');

  before(async () => {
    fresh = await freshDatabase();
    database = await openLeaseDb(fresh.url);
  });
  after(async () => {
    await database?.close();
    await fresh?.drop();
  });

  const node = (nodeId: string, o: { ttlMs: number; renewMs?: number; selfFenceMs?: number }) =>
    new PgLeases({ db: database.db, dialect: database.dialect, nodeId, logger, ...o });

  async function fencedWrite(leases: PgLeases, lease: Lease, holder: string): Promise<void> {
    await database.db.transaction().execute(async (trx) => {
      await sql`insert into lease_progress (holder, epoch, n) values (${holder}, ${lease.epoch}, 0)`.execute(trx);
      await leases.fence(trx, lease);
    });
  }

  test('one holder at a time; a holder that stops renewing loses the lease, and its fenced write fails', async () => {
    const a = node('a', { ttlMs: 800, selfFenceMs: 500 });
    const b = node('b', { ttlMs: 800, selfFenceMs: 500 });
    const la = await a.acquire('sender/1');
    assert.ok(la, 'a takes the free lease');
    assert.equal(await b.acquire('sender/1'), null, 'b cannot take a lease a holds');
    await fencedWrite(a, la, 'a');

    // a is paused: no renewals. It stops trusting the lease before it expires for others.
    await sleep(550);
    assert.equal(a.stillHeld(la), false, 'a fences itself after selfFenceMs without renewal');
    await sleep(350);
    const lb = await b.acquire('sender/1');
    assert.ok(lb, 'b takes the expired lease');
    assert.equal(lb.epoch, la.epoch + 1);

    await assert.rejects(fencedWrite(a, la, 'a-late'), LeaseLostError);
    await fencedWrite(b, lb, 'b');
    const rows = await sql<{ holder: string }>`select holder from lease_progress order by holder`.execute(database.db);
    assert.deepEqual(rows.rows.map((r) => r.holder), ['a', 'b'], "a's late write was rolled back with its transaction");
    await b.close();
    await a.close();
  });

  test('renewals keep a lease past its time to live; release frees it; a refused node asks again only after a third of the time to live', async () => {
    const a = node('ra', { ttlMs: 600, renewMs: 150 });
    const b = node('rb', { ttlMs: 600 });
    const c = node('rc', { ttlMs: 600 });
    await a.start();
    const la = await a.acquire('pushers');
    assert.ok(la);
    await sleep(900);
    assert.equal(await b.acquire('pushers'), null, 'a renewed it');
    assert.ok(a.stillHeld(la));
    await a.release(la);
    // b was just refused: it does not ask the database again yet (which would now say yes).
    assert.equal(await b.acquire('pushers'), null);
    await sleep(250);
    const lb = await b.acquire('pushers');
    assert.equal(lb?.epoch, la.epoch + 1);
    await b.release(lb!);
    // A node that was not refused takes a released lease at once.
    const lc = await c.acquire('pushers');
    assert.equal(lc?.epoch, la.epoch + 2);
    await c.close();
    await a.close();
    await b.close();
  });

  test('a holder paused by SIGSTOP past its lease loses it to another node; after SIGCONT its fenced write fails', async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./lease-holder-child.js', import.meta.url)), fresh.url, 'paused-node'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: Record<string, unknown>[] = [];
    const waiters: Array<() => void> = [];
    createInterface({ input: child.stdout! }).on('line', (l) => {
      lines.push(JSON.parse(l) as Record<string, unknown>);
      for (const w of waiters.splice(0)) w();
    });
    const until = async (pred: (l: Record<string, unknown>) => boolean) => {
      while (!lines.some(pred)) await new Promise<void>((r) => waiters.push(r));
      return lines.find(pred)!;
    };
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const held = Number((await until((l) => 'held' in l)).held);
      await until((l) => 'wrote' in l);
      child.kill('SIGSTOP');
      const other = node('other', { ttlMs: 5000 });
      let lease: Lease | null = null;
      const t0 = Date.now();
      while (!lease && Date.now() - t0 < 10_000) {
        lease = await other.acquire('job');
        if (!lease) await sleep(200);
      }
      assert.ok(lease, 'another node takes the lease once it expired');
      assert.equal(lease.epoch, held + 1);
      const movedMs = Date.now() - t0;
      console.log(`lease moved ${movedMs} ms after SIGSTOP`);
      recordFigures('paused lease holder', { lease_move_ms: movedMs });
      await fencedWrite(other, lease, 'other');
      child.kill('SIGCONT');
      const lost = await until((l) => 'lost' in l);
      assert.equal(lost.stillHeld, false, 'the old holder steps back');
      assert.equal(await exited, 0);
      const late = await sql<{ n: number }>`select n from lease_progress where holder = 'paused-node' and id > (select min(id) from lease_progress where holder = 'other')`.execute(database.db);
      assert.equal(late.rows.length, 0, 'no progress row from the old holder after the takeover');
      await other.close();
    } finally {
      child.kill('SIGKILL');
    }
  });
});
