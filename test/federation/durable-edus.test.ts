// To-device messages are stored EDUs (federation outbound): one sent while the receiving server
// is down reaches it when it is back, and one queued just before the sending server restarts is
// delivered after the restart, once; the stored rows go once the server took them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, e, expectStatus, txn } from '../rooms/room-helpers.js';
import { eventually, startServers } from './federation-helpers.js';

describe('stored to-device EDUs', { timeout: 120_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  let stop: () => Promise<void>;
  let alice: TestUser;
  let bob: TestUser;
  let since: string | undefined;

  /** Bob's to-device messages since the last call. */
  async function inbox(): Promise<any[]> {
    const res = await b.request('GET', `${C}/sync?timeout=0${since ? `&since=${e(since)}` : ''}`, { token: bob.accessToken });
    expectStatus(res, 200);
    since = res.body.next_batch;
    return res.body.to_device?.events ?? [];
  }

  async function sendFromA(content: Record<string, unknown>): Promise<void> {
    expectStatus(await a.request('PUT', `${C}/sendToDevice/m.test/${txn()}`, { token: alice.accessToken, body: { messages: { [bob.userId]: { [bob.deviceId]: content } } } }), 200);
  }

  /** The EDUs a.test keeps for b.test. */
  async function storedForB(): Promise<number> {
    const rows = await a.hs.ctx.db.selectFrom('federation_outbound_edus').select('pos').where('destination', '=', 'b.test').execute();
    return rows.length;
  }

  function shortBackoff(): void {
    const sender = a.hs.ctx.services.federation.sender;
    sender.backoff.initialMs = 200;
    sender.backoff.maxMs = 400;
  }

  before(async () => {
    const started = await startServers(['a.test', 'b.test']);
    [a, b] = started.servers as [TestServer, TestServer];
    stop = started.stop;
    alice = await a.registerUser('alice');
    bob = await b.registerUser('bob');
    await inbox();
    shortBackoff();
  });
  after(async () => {
    await stop();
  });

  it('a message sent while b.test is down arrives once it is back; the stored row then goes', async () => {
    await b.hs.stop();
    await sendFromA({ n: 'while down' });
    await eventually(async () => a.hs.ctx.services.federation.sender.status('b.test')?.failingSince != null, 'a.test to find b.test down');
    // Tried and failed, more than once: the message waits in the table, not in memory.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await storedForB(), 1);
    await b.restart();
    const got: any[] = [];
    await eventually(async () => {
      got.push(...(await inbox()));
      return got.length >= 1;
    }, 'the message on b.test', 20_000);
    assert.deepEqual(got.map((m) => m.content), [{ n: 'while down' }]);
    assert.equal(got[0].sender, alice.userId);
    await eventually(async () => (await storedForB()) === 0, 'the stored row deleted');
  });

  it('a message queued just before a.test restarts is delivered after the restart, exactly once', async () => {
    await b.hs.stop();
    await sendFromA({ n: 'before restart' });
    assert.equal(await storedForB(), 1, 'stored before the request answered');
    await a.restart();
    shortBackoff();
    await b.restart();
    // b.test reaching a.test tells a.test it is up again (whatever backoff the restart began with).
    await b.hs.ctx.services.federation.client.request('a.test', { method: 'GET', path: `/_matrix/federation/v1/query/profile?user_id=${e(alice.userId)}` });
    const got: any[] = [];
    await eventually(async () => {
      got.push(...(await inbox()));
      return got.length >= 1;
    }, 'the message on b.test', 20_000);
    await eventually(async () => (await storedForB()) === 0, 'the stored row deleted');
    // A second copy would have come by now.
    await new Promise((r) => setTimeout(r, 1000));
    got.push(...(await inbox()));
    assert.deepEqual(got.map((m) => m.content), [{ n: 'before restart' }]);
  });
});
