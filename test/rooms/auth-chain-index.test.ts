// State resolution over the auth chain index against resolution that walks every auth chain:
// rooms from another server with forks that change power levels, ban, kick and rename, in room
// versions 10 and 11 (v2) and 12 (v2.1). The index must cover every accepted state event, and any
// two states must resolve the same either way.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { StateMap } from '../../src/core/types.js';
import { stateKey, type JsonObject } from '../../src/core/types.js';
import { getRoomVersion } from '../../src/core/room-versions.js';
import { mostlyConflicted, resolveStates, resolveWithIndex, shortHistory } from '../../src/rooms/pipeline/resolve-states.js';
import { AuthChainIndex } from '../../src/rooms/state/auth-chain-index.js';
import { FakeRemote, receive, type RemoteEvent } from '../helpers/remote-server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { rng } from '../helpers/seeded-random.js';

let server: TestServer;
const remote = new FakeRemote('index.test');
const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((l) => remote.user(l)) as [string, string, string, string];

before(async () => {
  server = await startTestServer();
  remote.trustedBy(server);
});
after(async () => {
  await server.stop();
});

/** A room with two or three branches growing from random points, each branch keeping its own state for auth events. */
async function forkedRoom(seed: number, version: string): Promise<{ roomId: string; events: RemoteEvent[] }> {
  const rand = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  let roomId = `!i${seed}v${version}x${process.pid}:index.test`;
  const events: RemoteEvent[] = [];
  interface Tip { ev: RemoteEvent; state: StateMap }
  const make = (tip: Tip | null, sender: string, type: string, content: JsonObject, sk?: string, extraPrev?: Tip): Tip => {
    const prev = [tip, extraPrev].filter((t): t is Tip => t !== null && t !== undefined);
    const depth = prev.length === 0 ? 1 : Math.max(...prev.map((p) => p.ev.pdu.depth)) + 1;
    const state = new Map(tip?.state ?? []);
    const ev = remote.event(roomId, version, { sender, type, stateKey: sk, content, prev: prev.map((p) => p.ev.eventId), authFrom: state, depth, ts: 1_800_000_000_000 + events.length });
    if (events.length === 0 && getRoomVersion(version)!.roomIdIsCreateEventHash) roomId = `!${ev.eventId.slice(1)}`;
    if (sk !== undefined) state.set(stateKey(type, sk), ev.eventId);
    events.push(ev);
    return { ev, state };
  };
  const v12 = version === '12';
  let t = make(null, a, 'm.room.create', v12 ? { room_version: version } : { creator: a, room_version: version }, '');
  t = make(t, a, 'm.room.member', { membership: 'join' }, a);
  const pl = (levels: Record<string, number>): JsonObject => ({ users: v12 ? levels : { [a]: 100, ...levels }, state_default: 50, events_default: 0, ban: 50, kick: 50 });
  t = make(t, a, 'm.room.power_levels', pl({ [b]: 100, [c]: 60 }), '');
  t = make(t, a, 'm.room.join_rules', { join_rule: 'public' }, '');
  for (const u of [b, c, d]) t = make(t, u, 'm.room.member', { membership: 'join' }, u);
  const tips: Tip[] = [t];
  for (let i = 0; i < 16; i++) {
    const from = pick(tips);
    const kind = rand();
    let next: Tip;
    if (kind < 0.2) next = make(from, pick([a, b]), 'm.room.power_levels', pl({ [b]: 100, [c]: pick([0, 60, 90]), [d]: pick([0, 50]) }), '');
    else if (kind < 0.35) next = make(from, pick([b, c]), 'm.room.member', { membership: pick(['ban', 'leave']) }, pick([c, d]));
    else if (kind < 0.45) {
      const u = pick([c, d]);
      next = make(from, u, 'm.room.member', { membership: 'join' }, u);
    }
    else if (kind < 0.75) next = make(from, pick([a, b, c, d]), 'm.room.name', { name: `n${i}` }, '');
    else next = make(from, pick([a, b, c]), 'm.room.topic', { topic: `t${i}` }, '');
    if (rand() < 0.4 && tips.length < 3) tips.push(next);
    else tips[tips.indexOf(from)] = next;
    if (rand() < 0.15 && tips.length > 1) {
      const [x, y] = [tips[0]!, tips[1]!];
      const merged = make(x, pick([a, b]), 'm.room.topic', { topic: `merge${i}` }, '', y);
      tips.splice(0, 2, merged);
    }
  }
  return { roomId, events };
}

test('resolution over the index equals resolution over walked auth chains', async () => {
  const core = server.hs.ctx.services.rooms.core;
  let compared = 0;
  for (const version of ['10', '11', '12']) {
    for (let seed = 1; seed <= 12; seed++) {
      const { roomId, events } = await forkedRoom(seed, version);
      await receive(server, roomId, { pdus: events.slice(0, 1).map((e) => e.pdu) }, version);
      for (const e of events.slice(1)) await receive(server, roomId, { pdus: [e.pdu] });

      const rows = await server.hs.ctx.db
        .selectFrom('events')
        .leftJoin('auth_chain_positions as p', 'p.event_id', 'events.event_id')
        .select(['events.event_id', 'events.state_group', 'events.rejected_reason', 'events.state_key', 'p.chain_id'])
        .where('room_id', '=', roomId)
        .execute();
      for (const r of rows) {
        if (r.state_key !== null && r.rejected_reason === null) assert.notEqual(r.chain_id, null, `${version}/${seed}: ${r.event_id} is indexed`);
      }
      const groups = rows.filter((r) => r.state_group !== null && r.rejected_reason === null).map((r) => Number(r.state_group));
      const rand = rng(seed * 31);
      const load = (ids: string[]) => core.events.getMany(ids);
      const v = getRoomVersion(version)!;
      for (let k = 0; k < 6; k++) {
        const sets = await Promise.all([0, 1, 2].slice(0, 2 + Math.floor(rand() * 2)).map(() => core.groups.load(groups[Math.floor(rand() * groups.length)]!)));
        const walked = await resolveStates(v, sets, load);
        const indexed = await resolveWithIndex(v, sets, load, { db: server.hs.ctx.db, chains: new AuthChainIndex().overlay(), batch: () => undefined }, false);
        assert.ok(indexed, `${version}/${seed}: the index covers the sets`);
        assert.deepEqual([...indexed].sort(), [...walked].sort(), `${version}/${seed}/${k}`);
        compared++;
      }
    }
  }
  assert.equal(compared, 3 * 12 * 6);
});

test('resolution walks the auth chains when they hold little beyond the conflicted events', () => {
  // 2,000 conflicted events each first on its own chain (a fork over distinct keys): walking reads no more than the index.
  const wide = Array.from({ length: 2000 }, (_, i) => ({ chain: i + 10, seq: 1 }));
  assert.equal(shortHistory([...wide, { chain: 1, seq: 1 }, { chain: 2, seq: 3 }], 2000), true);
  // Two conflicted topics on top of 1,000 members who each renamed themselves 10 times: the index.
  const deep = Array.from({ length: 1000 }, (_, i) => ({ chain: i + 10, seq: 11 }));
  assert.equal(shortHistory([...deep, { chain: 5, seq: 40 }, { chain: 5, seq: 41 }], 2), false);
  // One key changed 10,000 times, conflicted on both sides: the index, though nearly every state event conflicts.
  assert.equal(shortHistory([{ chain: 1, seq: 1 }, { chain: 7, seq: 10_000 }, { chain: 8, seq: 9_999 }], 2), false);
  // Before reading any position: 2,000 of 2,005 events conflicted walks; a few conflicts, or a small room, reads the index.
  assert.equal(mostlyConflicted(2005, 2000), true);
  assert.equal(mostlyConflicted(1010, 2), false);
  assert.equal(mostlyConflicted(12, 8), false);
});
