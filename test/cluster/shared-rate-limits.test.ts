import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SharedRateLimiter } from '../../src/cluster/shared-rate-limiter.js';
import { MemoryRateLimiter } from '../../src/http/rate-limit.js';
import type { ApiResponse, TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, txn } from '../rooms/room-helpers.js';
import { median, NEEDS_PG, startNodes, stopNodes } from './cluster-helpers.js';

const LOGIN_BURST = 5;
const MESSAGE_BURST = 6;
/** Slow enough that no token comes back while the test runs. */
const SLOW = 0.01;

function expectLimited(res: ApiResponse): void {
  assert.equal(res.status, 429, JSON.stringify(res.body));
  assert.equal(res.body.errcode, 'M_LIMIT_EXCEEDED');
  assert.ok(Number.isInteger(res.body.retry_after_ms) && res.body.retry_after_ms > 0, `retry_after_ms: ${res.body.retry_after_ms}`);
}

/**
 * Two nodes on one database grant one node's allowance between them: the
 * buckets are rows both nodes spend from (CLUSTER.md 2: nodes hold no state).
 * With a limiter per process, each would grant the full burst.
 */
describe('rate limits shared by the nodes', { skip: NEEDS_PG }, () => {
  let nodes: TestServer[];
  let alice: TestUser;

  before(async () => {
    nodes = await startNodes(2, {
      config: {
        rate_limits: {
          enabled: true,
          login: { per_second: SLOW, burst: LOGIN_BURST },
          registration: { per_second: 1, burst: 50 },
          message: { per_second: SLOW, burst: MESSAGE_BURST },
        },
      },
    });
    // Logging alice in spends one of the address's login tokens, on the first node.
    alice = await nodes[0]!.registerUser('rl_alice');
  });
  after(async () => {
    await stopNodes(nodes);
  });

  test('password guesses spread over both nodes get one budget between them', async () => {
    const answers: ApiResponse[] = [];
    for (let i = 0; i < 12; i++) {
      const node = nodes[i % 2]!;
      answers.push(
        await node.request('POST', `${C}/login`, {
          body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'rl_alice' }, password: `guess ${i}` },
        }),
      );
    }
    const tried = answers.filter((r) => r.status !== 429);
    assert.ok(tried.every((r) => r.status === 403), JSON.stringify(tried.map((r) => r.body)));
    assert.equal(tried.length, LOGIN_BURST - 1, 'the burst less the login before, on whichever node');
    for (const r of answers.filter((r) => r.status === 429)) expectLimited(r);
  });

  test('concurrent sends through both nodes get one burst between them, and the refused ones say when to retry', async () => {
    const roomId = await createRoom(nodes[0]!, alice);
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        nodes[i % 2]!.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txn()}`, { token: alice.accessToken, body: { msgtype: 'm.text', body: `n${i}` } }),
      ),
    );
    const sent = answers.filter((r) => r.status === 200);
    assert.equal(sent.length, MESSAGE_BURST, JSON.stringify(answers.map((r) => r.status)));
    for (const r of answers.filter((r) => r.status !== 200)) expectLimited(r);
    const perNode = [0, 1].map((n) => answers.filter((r, i) => i % 2 === n && r.status === 200).length);
    assert.equal(perNode[0]! + perNode[1]!, MESSAGE_BURST, `${perNode}`);
    // A different user has a bucket of their own.
    const bob = await nodes[1]!.hs.ctx.services.accounts.createUser({ localpart: 'rl_bob', password: 'pw' });
    assert.equal(await nodes[0]!.hs.ctx.rateLimiter.check('message', bob.userId), undefined);
  });

  test('a check costs one round trip to the database', async () => {
    const { db, leases, logger } = nodes[0]!.hs.ctx;
    const limits = { bench: { per_second: 1e6, burst: 1e9 } };
    const shared = new SharedRateLimiter({ db, leases, logger, limits, enabled: true });
    const memory = new MemoryRateLimiter(limits, true);
    const rounds: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      for (let i = 0; i < 200; i++) await shared.check('bench', `k${i % 20}`);
      rounds.push((performance.now() - t0) / 200);
    }
    const t1 = performance.now();
    for (let i = 0; i < 10_000; i++) memory.check('bench', `k${i % 20}`);
    const mem = (performance.now() - t1) / 10_000;
    console.log(`rate limit check: shared (PostgreSQL) ${(median(rounds) * 1000).toFixed(0)} µs, in memory ${(mem * 1000).toFixed(2)} µs`);
    assert.ok(median(rounds) < 20, 'well under a request’s own cost');
    assert.equal(await shared.prune(), 20, 'the full buckets are deleted');
  });
});
