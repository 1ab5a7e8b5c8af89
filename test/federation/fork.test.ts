// A fork across three Hearth servers (state resolution over federation): a.test is cut off from
// b.test and c.test; on b.test bob raises carol's power level to his own, then on a.test alice
// bans carol. Once the servers reach each other again, all three hold the same current state,
// and it is the one state resolution v2 gives (room versions 10 and 12 differ, see below).
import assert from 'node:assert/strict';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, membershipAction, putState, roomState, sendText, stateOf } from '../rooms/room-helpers.js';
import { eventually, freePort } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let c: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let dave: TestUser;
const rooms: Record<'10' | '12', string> = { '10': '', '12': '' };
/** The link from one server to another, by "from>to". */
const links = new Map<string, Link>();

/**
 * One server's way to another: a TCP relay that the test can cut (new connections refused, open
 * ones closed, as a network partition would) and mend.
 */
class Link {
  private cut = false;
  private readonly open = new Set<Socket>();
  private readonly server = createNetServer((inbound) => {
    if (this.cut) return inbound.destroy();
    const outbound = connect(this.targetPort, '127.0.0.1');
    for (const [s, other] of [[inbound, outbound], [outbound, inbound]] as const) {
      this.open.add(s);
      s.on('error', () => other.destroy());
      s.on('close', () => {
        this.open.delete(s);
        other.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });

  private constructor(private readonly targetPort: number) {}

  static async to(targetPort: number): Promise<Link> {
    const l = new Link(targetPort);
    await new Promise<void>((r) => l.server.listen(0, '127.0.0.1', () => r()));
    return l;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  set(cut: boolean): void {
    this.cut = cut;
    if (cut) for (const s of this.open) s.destroy();
  }

  async close(): Promise<void> {
    this.set(true);
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Cuts (or mends) the links between `s` and each of `others`, both ways. */
function cut(s: TestServer, others: TestServer[], isCut: boolean): void {
  for (const o of others) {
    links.get(`${s.serverName}>${o.serverName}`)!.set(isCut);
    links.get(`${o.serverName}>${s.serverName}`)!.set(isCut);
  }
}

/** The room's members (sorted by user), power levels and state event ids (sorted) as `user` reads the current state on `server`. */
async function currentState(server: TestServer, user: TestUser, roomId: string) {
  const state = await roomState(server, user, roomId);
  const members = Object.fromEntries(
    state
      .filter((ev) => ev.type === 'm.room.member')
      .map((ev) => [ev.state_key as string, ev.content.membership as string])
      .sort(([x], [y]) => (x < y ? -1 : 1)),
  );
  return { members, powerLevels: stateOf(state, 'm.room.power_levels').content, ids: state.map((ev) => ev.event_id).sort() };
}

before(async () => {
  const names = ['a.test', 'b.test', 'c.test'];
  const ports = [await freePort(), await freePort(), await freePort()];
  const resolve: Record<string, Record<string, string>> = {};
  for (const [i, from] of names.entries()) {
    resolve[from] = { [from]: `http://127.0.0.1:${ports[i]}` };
    for (const [j, to] of names.entries()) {
      if (i === j) continue;
      const l = await Link.to(ports[j]!);
      links.set(`${from}>${to}`, l);
      resolve[from]![to] = `http://127.0.0.1:${l.port}`;
    }
  }
  [a, b, c] = await Promise.all(names.map((serverName, i) => startTestServer({ serverName, config: { listen: `127.0.0.1:${ports[i]}`, federation: { resolve: resolve[serverName] } } })));
  for (const s of [a, b, c]) {
    // Retried quickly once the cut ends.
    s.hs.ctx.services.federation.sender.backoff.initialMs = 200;
    s.hs.ctx.services.federation.sender.backoff.maxMs = 400;
  }
  alice = await a.registerUser('alice');
  bob = await b.registerUser('bob');
  carol = await c.registerUser('carol');
  dave = await c.registerUser('dave');
  // Bob has the power to change power levels, as alice does; in room version 12 alice, the
  // creator, is above every power level instead of at 100.
  rooms['10'] = await createRoom(a, alice, { preset: 'public_chat', room_version: '10', power_level_content_override: { users: { [alice.userId]: 100, [bob.userId]: 100 } } });
  rooms['12'] = await createRoom(a, alice, { preset: 'public_chat', room_version: '12', power_level_content_override: { users: { [bob.userId]: 100 } } });
  for (const roomId of Object.values(rooms)) {
    expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: bob.accessToken, body: {} }), 200);
    expectStatus(await c.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: carol.accessToken, body: {} }), 200);
    expectStatus(await c.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: dave.accessToken, body: {} }), 200);
    const everyone = [alice.userId, bob.userId, carol.userId, dave.userId].sort();
    for (const [server, user] of [[a, alice], [b, bob], [c, dave]] as const) {
      await eventually(async () => {
        const res = await server.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: user.accessToken });
        return res.status === 200 && JSON.stringify(Object.keys(res.body.joined).sort()) === JSON.stringify(everyone);
      }, `every member joined as seen on ${server.serverName}`);
    }
  }
});
after(async () => {
  await Promise.all([a, b, c].map((s) => s?.stop()));
  await Promise.all([...links.values()].map((l) => l.close()));
});

test('a ban on a.test while b.test raises the banned user’s power resolves to the same state on all three servers', async () => {
  cut(a, [b, c], true);
  for (const roomId of Object.values(rooms)) {
    const pl = (await currentState(b, bob, roomId)).powerLevels;
    expectStatus(await putState(b, bob, roomId, 'm.room.power_levels', '', { ...pl, users: { ...pl.users, [carol.userId]: 100 } }), 200);
  }
  // The raise reaches c.test, not a.test.
  for (const roomId of Object.values(rooms)) {
    await eventually(async () => (await currentState(c, dave, roomId)).powerLevels.users[carol.userId] === 100, 'the raise on c.test');
  }
  // Later than the raise (origin_server_ts), on a.test, where carol's level is still 0.
  await new Promise((r) => setTimeout(r, 20));
  for (const roomId of Object.values(rooms)) {
    expectStatus(await membershipAction(a, alice, roomId, 'ban', { user_id: carol.userId, reason: 'fork' }), 200);
    assert.equal((await currentState(a, alice, roomId)).members[carol.userId], 'ban');
  }
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await currentState(b, bob, rooms['12'])).members[carol.userId], 'join', 'b.test did not hear of the ban during the cut');

  cut(a, [b, c], false);
  // Resolution v2 (spec: rooms/v2 "State resolution"): the raise and the ban are power events,
  // ordered by their senders' power, then origin_server_ts, and authorised in that order.
  // Room version 10: alice and bob are both at 100, so the earlier raise goes first; then the
  // ban fails (carol's 100 is not below alice's 100) and carol's join stands.
  // Room version 12: alice, the creator, is above everyone, the ban is authorised whatever the
  // order, and carol's join fails against it; the raise is authorised too.
  const expected = { '10': 'join', '12': 'ban' } as const;
  for (const [version, roomId] of Object.entries(rooms) as ['10' | '12', string][]) {
    let polls = 0;
    const seen = await eventually(async () => {
      // Now and then a message, whose prev_events join the two sides once both are known here.
      if (polls++ % 10 === 0) await sendText(b, bob, roomId, `after the fork ${polls}`);
      const states = [await currentState(a, alice, roomId), await currentState(b, bob, roomId), await currentState(c, dave, roomId)];
      const same = states.every((s) => JSON.stringify(s) === JSON.stringify(states[0]));
      return same && states[0]!.members[carol.userId] === expected[version] ? states : undefined;
    }, `room ${version}: the same state on the three servers`, 30_000).catch(async (err: Error) => {
      const states = await Promise.all([currentState(a, alice, roomId), currentState(b, bob, roomId), currentState(c, dave, roomId)]);
      throw new Error(`${err.message}: ${JSON.stringify(states)}`);
    });
    const [onA] = seen;
    assert.equal(onA!.members[carol.userId], expected[version]);
    assert.equal(onA!.powerLevels.users[carol.userId], 100);
    assert.equal(onA!.members[alice.userId], 'join');
    assert.equal(onA!.members[bob.userId], 'join');
    assert.equal(onA!.members[dave.userId], 'join');
  }
});
