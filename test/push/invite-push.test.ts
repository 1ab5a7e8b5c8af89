/**
 * Push details (spec: modules/push): a local user who is invited is pushed
 * the invite through their pusher by the default `.m.rule.invite_for_me`
 * rule (they are not joined, so only their own rules decide), and
 * GET /notifications gives each notification the `profile_tag` of the asking
 * device's pusher.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

// The gateway runs on loopback, which the outbound guard refuses unless allowed.
process.env.HEARTH_OUTBOUND_ALLOW = '127.0.0.1/32';

interface Notify {
  notification: { event_id?: string; type?: string; sender?: string; user_is_target?: boolean; devices: { pushkey: string; tweaks?: Record<string, unknown> }[] };
}

describe('invite pushes and profile tags', () => {
  let server: TestServer;
  let gateway: Server;
  let url = '';
  const received: Notify[] = [];
  let alice: TestUser;
  let bob: TestUser;

  const req = (u: TestUser, method: string, path: string, body?: unknown) => server.request(method, path, { token: u.accessToken, body });
  const forKey = (key: string) => received.filter((r) => r.notification.devices.some((d) => d.pushkey === key));
  async function waitFor(key: string, pred: (n: Notify) => boolean): Promise<Notify> {
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      const hit = forKey(key).find(pred);
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no matching notification for ${key}: ${JSON.stringify(forKey(key))}`);
  }
  const setPusher = async (u: TestUser, pushkey: string, extra: Record<string, unknown> = {}) => {
    const res = await req(u, 'POST', `${V3}/pushers/set`, {
      kind: 'http',
      app_id: 'org.example.app',
      pushkey,
      app_display_name: 'Example',
      device_display_name: 'Phone',
      lang: 'en',
      data: { url },
      ...extra,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  };

  before(async () => {
    gateway = createServer((rq, rs) => {
      let body = '';
      rq.on('data', (c) => (body += c));
      rq.on('end', () => {
        received.push(JSON.parse(body) as Notify);
        rs.setHeader('content-type', 'application/json');
        rs.end(JSON.stringify({ rejected: [] }));
      });
    });
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/_matrix/push/v1/notify`;
    server = await startTestServer();
    alice = await server.registerUser();
    bob = await server.registerUser();
  });
  after(async () => {
    await server.stop();
    await new Promise<void>((r) => gateway.close(() => r()));
  });

  it('an invited local user gets a push for the invite through their pusher', async () => {
    await setPusher(bob, 'bob-key');
    const roomId = (await req(alice, 'POST', `${V3}/createRoom`, { name: 'Party' })).body.room_id as string;
    const inv = await req(alice, 'POST', `${V3}/rooms/${enc(roomId)}/invite`, { user_id: bob.userId });
    assert.equal(inv.status, 200);
    const got = await waitFor('bob-key', (n) => n.notification.type === 'm.room.member');
    assert.equal(got.notification.sender, alice.userId);
    assert.equal(got.notification.user_is_target, true);
    // .m.rule.invite_for_me: notify, with the default sound, no highlight.
    assert.equal(got.notification.devices[0].tweaks?.sound, 'default');
    assert.notEqual(got.notification.devices[0].tweaks?.highlight, true);
  });

  it('an invitee who turned .m.rule.invite_for_me off gets no push for the invite', async () => {
    const carol = await server.registerUser();
    await setPusher(carol, 'carol-key');
    const off = await req(carol, 'PUT', `${V3}/pushrules/global/override/.m.rule.invite_for_me/enabled`, { enabled: false });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    const roomId = (await req(alice, 'POST', `${V3}/createRoom`, { invite: [carol.userId] })).body.room_id as string;
    // A later message in a room carol did join shows the pusher works: the invite came before it and was not sent.
    const other = (await req(alice, 'POST', `${V3}/createRoom`, {})).body.room_id as string;
    await req(alice, 'POST', `${V3}/rooms/${enc(other)}/invite`, { user_id: carol.userId });
    await req(carol, 'POST', `${V3}/rooms/${enc(other)}/join`, {});
    await req(alice, 'PUT', `${V3}/rooms/${enc(other)}/send/m.room.message/c1`, { msgtype: 'm.text', body: 'ping' });
    await waitFor('carol-key', (n) => n.notification.type === 'm.room.message');
    assert.equal(forKey('carol-key').filter((n) => n.notification.type === 'm.room.member').length, 0);
    assert.ok(roomId);
  });

  it('GET /notifications carries the profile_tag of the asking device\'s pusher', async () => {
    const dave = await server.registerUser();
    const roomId = (await req(alice, 'POST', `${V3}/createRoom`, { preset: 'public_chat' })).body.room_id as string;
    await req(dave, 'POST', `${V3}/rooms/${enc(roomId)}/join`, {});
    await req(alice, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/d1`, { msgtype: 'm.text', body: 'hi', 'm.mentions': { user_ids: [dave.userId] } });
    let res = await req(dave, 'GET', `${V3}/notifications`);
    assert.equal(res.status, 200);
    assert.equal(res.body.notifications.length, 1);
    assert.equal('profile_tag' in res.body.notifications[0], false, 'no pusher, no profile tag');
    await setPusher(dave, 'dave-key', { profile_tag: 'work-phone' });
    res = await req(dave, 'GET', `${V3}/notifications?only=highlight`);
    assert.equal(res.body.notifications.length, 1);
    assert.equal(res.body.notifications[0].profile_tag, 'work-phone');
  });
});
