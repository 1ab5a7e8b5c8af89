import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { login, withPasswordUia } from '../accounts/helpers.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

// The gateway runs on loopback, which the outbound guard refuses unless allowed.
process.env.HEARTH_OUTBOUND_ALLOW = '127.0.0.1/32';

interface Received {
  notification: {
    event_id?: string;
    room_id?: string;
    type?: string;
    sender?: string;
    content?: Record<string, unknown>;
    room_name?: string;
    prio?: string;
    counts?: { unread?: number };
    devices: { app_id: string; pushkey: string; pushkey_ts?: number; data?: Record<string, unknown>; tweaks?: Record<string, unknown> }[];
  };
}

/** A push gateway on loopback: records every notify and answers what `answer` says for the pushkey. */
class Gateway {
  readonly received: Received[] = [];
  /** pushkey → statuses to answer in turn (the last repeats); 'reject' answers 200 with the key rejected. */
  readonly script = new Map<string, (number | 'reject')[]>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const msg = JSON.parse(body) as Received;
        this.received.push(msg);
        const key = msg.notification.devices[0]?.pushkey ?? '';
        const steps = this.script.get(key) ?? [200];
        const step = steps.length > 1 ? steps.shift()! : steps[0];
        res.setHeader('content-type', 'application/json');
        if (step === 'reject') {
          res.end(JSON.stringify({ rejected: [key] }));
        } else {
          res.statusCode = step;
          res.end(JSON.stringify(step === 200 ? { rejected: [] } : { error: 'down' }));
        }
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/_matrix/push/v1/notify`;
  }

  for(pushkey: string): Received[] {
    return this.received.filter((r) => r.notification.devices.some((d) => d.pushkey === pushkey));
  }

  async waitFor(pushkey: string, count = 1, timeoutMs = 10_000): Promise<Received[]> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.for(pushkey).length >= count) return this.for(pushkey);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`gateway got ${this.for(pushkey).length} notifications for ${pushkey}, wanted ${count}`);
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('Push delivery to HTTP push gateways (push gateway API push_notifier.yaml; client-server modules/push.md)', () => {
  let server: TestServer;
  let gateway: Gateway;
  before(async () => {
    gateway = new Gateway();
    await gateway.start();
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
    await gateway.stop();
  });

  const req = (u: TestUser, method: string, path: string, body?: unknown) => server.request(method, path, { token: u.accessToken, body });

  async function setPusher(u: TestUser, pushkey: string, data: Record<string, unknown> = {}): Promise<void> {
    const res = await req(u, 'POST', `${V3}/pushers/set`, {
      kind: 'http',
      app_id: 'org.example.app',
      pushkey,
      app_display_name: 'Example',
      device_display_name: 'Phone',
      lang: 'en',
      data: { url: gateway.url, ...data },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }

  /** A room `owner` created with `members` joined (without invites: those are pushed too, see invite-push.test.ts). */
  async function roomWith(owner: TestUser, members: TestUser[], name = 'Push room'): Promise<string> {
    const roomId = (await req(owner, 'POST', `${V3}/createRoom`, { name, preset: 'public_chat' })).body.room_id as string;
    for (const m of members) assert.equal((await req(m, 'POST', `${V3}/rooms/${encodeURIComponent(roomId)}/join`, {})).status, 200);
    return roomId;
  }

  let txn = 0;
  async function send(u: TestUser, roomId: string, content: Record<string, unknown>): Promise<string> {
    const res = await req(u, 'PUT', `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${++txn}`, content);
    assert.equal(res.status, 200);
    return res.body.event_id as string;
  }

  it('a mention is POSTed to the mentioned user\'s gateway with the event, counts and highlight tweak', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    await setPusher(alice, 'alice-key', { format: 'full', extra: 'kept' });
    const roomId = await roomWith(bob, [alice], 'Mission Control');
    const eventId = await send(bob, roomId, { msgtype: 'm.text', body: `hello ${alice.userId}`, 'm.mentions': { user_ids: [alice.userId] } });
    const [got] = await gateway.waitFor('alice-key');
    const n = got.notification;
    assert.equal(n.event_id, eventId);
    assert.equal(n.room_id, roomId);
    assert.equal(n.type, 'm.room.message');
    assert.equal(n.sender, bob.userId);
    assert.equal(n.room_name, 'Mission Control');
    assert.equal(n.prio, 'high');
    assert.equal(n.content?.body, `hello ${alice.userId}`);
    assert.equal(n.counts?.unread, 1);
    assert.equal(n.devices.length, 1);
    assert.equal(n.devices[0].app_id, 'org.example.app');
    assert.deepEqual(n.devices[0].data, { format: 'full', extra: 'kept' }, 'data is passed on without url');
    assert.equal(n.devices[0].tweaks?.highlight, true);
    assert.equal(typeof n.devices[0].pushkey_ts, 'number');
    // The sender's own message is not pushed to the sender.
    await setPusher(bob, 'bob-key');
    await send(bob, roomId, { msgtype: 'm.text', body: 'from bob again' });
    await gateway.waitFor('alice-key', 2);
    assert.equal(gateway.for('bob-key').length, 0);
  });

  it('event_id_only pushers get no event content', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    await setPusher(alice, 'alice-idonly', { format: 'event_id_only' });
    const roomId = await roomWith(bob, [alice]);
    const eventId = await send(bob, roomId, { msgtype: 'm.text', body: 'secret' });
    const [got] = await gateway.waitFor('alice-idonly');
    assert.equal(got.notification.event_id, eventId);
    assert.equal(got.notification.content, undefined);
    assert.equal(got.notification.sender, undefined);
  });

  it('a pushkey the gateway rejects loses its pusher', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    await setPusher(alice, 'doomed-key');
    gateway.script.set('doomed-key', ['reject']);
    const roomId = await roomWith(bob, [alice]);
    await send(bob, roomId, { msgtype: 'm.text', body: 'one' });
    await gateway.waitFor('doomed-key');
    let pushers: unknown[] = [{}];
    for (let i = 0; i < 100 && pushers.length > 0; i++) {
      pushers = (await req(alice, 'GET', `${V3}/pushers`)).body.pushers;
      if (pushers.length > 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(pushers, []);
    await send(bob, roomId, { msgtype: 'm.text', body: 'two' });
    // A later notification for the room's other member proves the stream moved on without this pusher.
    await setPusher(bob, 'bob-witness');
    await send(alice, roomId, { msgtype: 'm.text', body: 'three' });
    await gateway.waitFor('bob-witness');
    assert.equal(gateway.for('doomed-key').length, 1);
  });

  it('a gateway that fails is retried with backoff until it answers', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    await setPusher(alice, 'flaky-key');
    gateway.script.set('flaky-key', [503, 500, 200]);
    const roomId = await roomWith(bob, [alice]);
    const eventId = await send(bob, roomId, { msgtype: 'm.text', body: 'eventually' });
    const got = await gateway.waitFor('flaky-key', 3);
    assert.ok(got.every((r) => r.notification.event_id === eventId), 'the same notification is retried');
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(gateway.for('flaky-key').length, 3, 'no retry after success');
  });

  it('a gateway that stays down is given up on, then skipped, without holding up other pushers', { timeout: 60_000 }, async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    const carol = await server.registerUser();
    await setPusher(alice, 'dead-key');
    await setPusher(carol, 'carol-key');
    gateway.script.set('dead-key', [503]);
    const roomId = await roomWith(bob, [alice, carol]);
    const first = await send(bob, roomId, { msgtype: 'm.text', body: 'first' });
    const second = await send(bob, roomId, { msgtype: 'm.text', body: 'second' });
    const carolGot = await gateway.waitFor('carol-key', 2, 30_000);
    assert.deepEqual(carolGot.map((r) => r.notification.event_id), [first, second]);
    const dead = gateway.for('dead-key');
    assert.equal(dead.length, 5, 'five attempts for the first notification, with backoff');
    assert.ok(dead.every((r) => r.notification.event_id === first), 'the second is not tried while the pusher is paused');
  });

  it('changing the password removes the pushers of the sessions it logs out, not the current one', async () => {
    const alice = await server.registerUser();
    const phone = await login(server, alice);
    await setPusher(alice, 'laptop-key');
    await setPusher(phone, 'phone-key');
    assert.equal((await req(alice, 'GET', `${V3}/pushers`)).body.pushers.length, 2);
    const res = await withPasswordUia(server, 'POST', `${V3}/account/password`, alice, { new_password: 'another-long-password-9' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const left = (await req(alice, 'GET', `${V3}/pushers`)).body.pushers as { pushkey: string }[];
    assert.deepEqual(left.map((p) => p.pushkey), ['laptop-key']);
  });

  it('logging a device out removes the pushers it set', async () => {
    const alice = await server.registerUser();
    const tablet = await login(server, alice);
    await setPusher(alice, 'stays-key');
    await setPusher(tablet, 'tablet-key');
    assert.equal((await req(tablet, 'POST', `${V3}/logout`, {})).status, 200);
    const left = (await req(alice, 'GET', `${V3}/pushers`)).body.pushers as { pushkey: string }[];
    assert.deepEqual(left.map((p) => p.pushkey), ['stays-key']);
  });

  it('after a restart delivery resumes from its stored position: nothing twice, nothing lost', async () => {
    const alice = await server.registerUser();
    const bob = await server.registerUser();
    await setPusher(alice, 'restart-key');
    const roomId = await roomWith(bob, [alice]);
    const first = await send(bob, roomId, { msgtype: 'm.text', body: 'before' });
    await gateway.waitFor('restart-key');
    await server.restart();
    const relog = await login(server, bob);
    const second = await send(relog, roomId, { msgtype: 'm.text', body: 'after' });
    const got = await gateway.waitFor('restart-key', 2);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(gateway.for('restart-key').map((r) => r.notification.event_id), [first, second]);
    assert.equal(got.length, 2);
  });
});
