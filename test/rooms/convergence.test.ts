// Random room graphs from three senders on another server, delivered to the inbound path in causal
// order and in random orders (an event whose prev events are not here yet is handed back, as
// federation fetches missing events): both must end with the same current state, the same forward
// extremities and the same events visible to clients.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { stateKey, type JsonObject } from '../../src/core/types.js';
import { FakeRemote, receive, type RemoteEvent } from '../helpers/remote-server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { rng } from '../helpers/seeded-random.js';

const CASES = Number(process.env.HEARTH_CONVERGENCE_CASES ?? 200);
const RANDOM_EVENTS = 12;

let server: TestServer;
const remote = new FakeRemote('conv.test');
const senders = ['a', 'b', 'c'].map((l) => remote.user(l));

before(async () => {
  server = await startTestServer();
  remote.trustedBy(server);
});
after(async () => {
  await server.stop();
});

interface Instance {
  roomId: string;
  version: string;
  /** The room's opening events, in order. */
  prefix: RemoteEvent[];
  /** The random part, in causal order. */
  rest: RemoteEvent[];
}

/** One graph from `seed`, built for `roomId`: the same seed gives the same shape in any room. */
function build(seed: number, roomId: string, version: string): Instance {
  const rand = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const state = new Map<string, string>();
  const all: RemoteEvent[] = [];
  const add = (sender: string, type: string, content: JsonObject, prev: RemoteEvent[], sk?: string): RemoteEvent => {
    const depth = prev.length === 0 ? 1 : Math.max(...prev.map((p) => p.pdu.depth)) + 1;
    // Every sender stays joined with the same power throughout: the auth selection never changes.
    const ev = remote.event(roomId, version, { sender, type, stateKey: sk, content, prev: prev.map((p) => p.eventId), authFrom: state, depth, ts: 1_800_000_000_000 + all.length });
    if (all.length < 6 && sk !== undefined) state.set(stateKey(type, sk), ev.eventId);
    all.push(ev);
    return ev;
  };
  const [a, b, c] = senders as [string, string, string];
  let last = add(a, 'm.room.create', version === '10' ? { creator: a, room_version: version } : { room_version: version }, [], '');
  last = add(a, 'm.room.member', { membership: 'join' }, [last], a);
  last = add(a, 'm.room.power_levels', { users: { [a]: 100, [b]: 100, [c]: 100 }, state_default: 50, events_default: 0 }, [last], '');
  last = add(a, 'm.room.join_rules', { join_rule: 'public' }, [last], '');
  last = add(b, 'm.room.member', { membership: 'join' }, [last], b);
  last = add(c, 'm.room.member', { membership: 'join' }, [last], c);
  const prefix = [...all];
  for (let i = 0; i < RANDOM_EVENTS; i++) {
    const recent = all.slice(Math.max(5, all.length - 4));
    const prev = rand() < 0.35 && recent.length > 1 ? [pick(recent), pick(recent)].filter((p, j, xs) => xs.indexOf(p) === j) : [pick(recent)];
    const sender = pick(senders);
    const kind = rand();
    if (kind < 0.4) add(sender, 'm.room.message', { msgtype: 'm.text', body: `m${i}` }, prev);
    else if (kind < 0.6) add(sender, 'm.room.topic', { topic: `t${i}` }, prev, '');
    else if (kind < 0.75) add(sender, 'm.room.name', { name: `n${i}` }, prev, '');
    else add(sender, 'org.example.state', { v: i }, prev, pick(['x', 'y']));
  }
  return { roomId, version, prefix, rest: all.slice(prefix.length) };
}

async function deliver(inst: Instance, order: RemoteEvent[]): Promise<void> {
  await receive(server, inst.roomId, { pdus: inst.prefix.map((e) => e.pdu) }, inst.version);
  const queue = [...order];
  let guard = 0;
  while (queue.length > 0) {
    assert.ok(guard++ < 10_000, 'delivery does not finish');
    const ev = queue.shift()!;
    const [r] = await receive(server, inst.roomId, { pdus: [ev.pdu] });
    if (r!.status === 'missing') queue.push(ev);
    else assert.ok(r!.status === 'accepted' || r!.status === 'duplicate', `${inst.roomId}: ${JSON.stringify(r)}`);
  }
}

/** The room as clients and the next event see it, with event ids replaced by their place in the template. */
async function outcome(inst: Instance) {
  const index = new Map([...inst.prefix, ...inst.rest].map((e, i) => [e.eventId, i]));
  const core = server.hs.ctx.services.rooms.core;
  core.heads.invalidate(inst.roomId);
  const head = (await core.heads.get(inst.roomId))!;
  const state = [...head.state].map(([k, id]) => `${k}=${index.get(id)}`).sort();
  const extremities = head.extremities.map((e) => index.get(e.eventId)).sort();
  const rows = await server.hs.ctx.db
    .selectFrom('events')
    .select(['event_id', 'stream_pos'])
    .where('room_id', '=', inst.roomId)
    .execute();
  const visible = rows.filter((r) => r.stream_pos !== null).map((r) => index.get(r.event_id)).sort();
  return { state, extremities, visible };
}

test(`${CASES} random graphs reach the same state whatever the delivery order`, async () => {
  let forks = 0;
  for (let seed = 1; seed <= CASES; seed++) {
    const version = seed % 2 === 0 ? '10' : '11';
    const causal = build(seed, `!c${seed}x${process.pid}:conv.test`, version);
    const shuffled = build(seed, `!r${seed}x${process.pid}:conv.test`, version);
    const rand = rng(seed * 7919);
    const order = [...shuffled.rest].sort(() => rand() - 0.5);
    await deliver(causal, causal.rest);
    await deliver(shuffled, order);
    const want = await outcome(causal);
    const got = await outcome(shuffled);
    assert.deepEqual(got, want, `seed ${seed}`);
    assert.equal(want.visible.length, causal.prefix.length + causal.rest.length, `seed ${seed}: every event is visible`);
    if (want.extremities.length > 1) forks++;
  }
  // The generator must exercise resolution, not only linear rooms.
  assert.ok(forks > CASES / 10, `only ${forks} of ${CASES} cases ended forked`);
});
