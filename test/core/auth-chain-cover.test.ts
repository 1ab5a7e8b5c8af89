// The chain cover index against the auth DAG it summarises: on random DAGs indexed in random
// batches, what an event reaches, the auth difference of several sets and v2.1's conflicted
// subgraph must be exactly what walking the auth events gives.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addReach,
  assignChains,
  authOrder,
  covers,
  differenceRanges,
  groupLinks,
  subgraphRanges,
  topsOf,
  type ChainCandidate,
  type ChainLink,
  type ChainPos,
} from '../../src/core/auth-chain-cover.js';
import { authChain, conflictedStateSubgraph } from '../../src/core/state-res.js';
import type { EventWithId } from '../../src/core/types.js';
import { rng } from '../helpers/seeded-random.js';

interface Dag {
  candidates: ChainCandidate[];
  lookup: (id: string) => EventWithId | undefined;
}

/** A random auth DAG: every event cites the create event, often the last event of its own key, and a few others. */
function randomDag(rand: () => number, size: number): Dag {
  const candidates: ChainCandidate[] = [];
  const lastOfKey = new Map<string, string>();
  const events = new Map<string, EventWithId>();
  for (let i = 0; i < size; i++) {
    const id = `$e${i}`;
    const key = i === 0 ? 'm.room.create\u0000' : `k\u0000${Math.floor(rand() * 6)}`;
    const auth = new Set<string>();
    if (i > 0) {
      auth.add('$e0');
      const same = lastOfKey.get(key);
      if (same && rand() < 0.7) auth.add(same);
      const extra = Math.floor(rand() * 3);
      for (let j = 0; j < extra; j++) auth.add(`$e${Math.floor(rand() * i)}`);
    }
    lastOfKey.set(key, id);
    const [type, stateKey] = key.split('\u0000') as [string, string];
    candidates.push({ eventId: id, key, authIds: [...auth] });
    events.set(id, { eventId: id, pdu: { type, state_key: stateKey, auth_events: [...auth] } as never });
  }
  return { candidates, lookup: (id) => events.get(id) };
}

/** Indexes the DAG in random batches, each seeing only what earlier batches stored. */
function indexInBatches(rand: () => number, dag: Dag): { pos: Map<string, ChainPos>; links: Map<number, ChainLink[]> } {
  const pos = new Map<string, ChainPos>();
  const keys = new Map<string, string>();
  const tails = new Map<number, number>();
  const links: ChainLink[] = [];
  let chains = 0;
  let i = 0;
  while (i < dag.candidates.length) {
    const n = 1 + Math.floor(rand() * 8);
    // A batch arrives in any order; the indexer puts auth events first.
    const batch = dag.candidates.slice(i, i + n).sort(() => rand() - 0.5);
    i += n;
    const r = assignChains(authOrder(batch), {
      position: (id) => pos.get(id),
      keyOf: (id) => keys.get(id),
      tail: (c) => tails.get(c) ?? 0,
      links: groupLinks(links),
    }, () => ++chains);
    assert.equal(r.positions.size, batch.length, 'every event whose auth events are indexed is placed');
    for (const [id, p] of r.positions) {
      pos.set(id, p);
      keys.set(id, batch.find((c) => c.eventId === id)!.key);
      tails.set(p.chain, Math.max(tails.get(p.chain) ?? 0, p.seq));
    }
    links.push(...r.links);
  }
  return { pos, links: groupLinks(links) };
}

function eventsAt(pos: Map<string, ChainPos>, ranges: { chain: number; lo: number; hi: number }[]): Set<string> {
  const out = new Set<string>();
  for (const [id, p] of pos) if (ranges.some((r) => r.chain === p.chain && p.seq > r.lo && p.seq <= r.hi)) out.add(id);
  return out;
}

test('what an indexed event reaches is exactly itself and its auth chain', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rand = rng(seed);
    const dag = randomDag(rand, 60);
    const { pos, links } = indexInBatches(rand, dag);
    const ids = dag.candidates.map((c) => c.eventId);
    for (const x of ids) {
      const reach = addReach(new Map(), topsOf([pos.get(x)!]), links);
      const truth = authChain([x], dag.lookup);
      truth.add(x);
      for (const y of ids) assert.equal(covers(reach, pos.get(y)!), truth.has(y), `seed ${seed}: ${y} in reach of ${x}`);
    }
  }
});

test('positions on one chain are dense and each is an ancestor of the next', () => {
  const rand = rng(7);
  const dag = randomDag(rand, 200);
  const { pos } = indexInBatches(rand, dag);
  const byChain = new Map<number, Map<number, string>>();
  for (const [id, p] of pos) {
    if (!byChain.has(p.chain)) byChain.set(p.chain, new Map());
    assert.ok(!byChain.get(p.chain)!.has(p.seq), 'one event per position');
    byChain.get(p.chain)!.set(p.seq, id);
  }
  for (const seqs of byChain.values()) {
    for (let s = 2; s <= seqs.size; s++) assert.ok(authChain([seqs.get(s)!], dag.lookup).has(seqs.get(s - 1)!));
  }
  assert.ok(byChain.size < pos.size / 2, `chains are reused: ${byChain.size} chains for ${pos.size} events`);
});

test('the auth difference and the conflicted subgraph match the walks', () => {
  for (let seed = 1; seed <= 60; seed++) {
    const rand = rng(1000 + seed);
    const dag = randomDag(rand, 50);
    const { pos, links } = indexInBatches(rand, dag);
    const ids = dag.candidates.map((c) => c.eventId);
    const pick = (n: number) => [...new Set(Array.from({ length: n }, () => ids[Math.floor(rand() * ids.length)]!))];

    const sets = Array.from({ length: 2 + Math.floor(rand() * 2) }, () => pick(1 + Math.floor(rand() * 5)));
    const full = sets.map((s) => new Set([...authChain(s, dag.lookup), ...s]));
    const truth = new Set([...new Set(full.flatMap((f) => [...f]))].filter((id) => !full.every((f) => f.has(id))));
    const reaches = sets.map((s) => addReach(new Map(), topsOf(s.map((id) => pos.get(id)!)), links));
    assert.deepEqual([...eventsAt(pos, differenceRanges(reaches))].sort(), [...truth].sort(), `seed ${seed}: auth difference`);

    const conflicted = pick(2 + Math.floor(rand() * 4));
    const walked = conflictedStateSubgraph(conflicted, dag.lookup);
    for (const c of conflicted) walked.add(c);
    const viaIndex = eventsAt(pos, subgraphRanges(conflicted.map((id) => pos.get(id)!), links));
    for (const c of conflicted) viaIndex.add(c);
    assert.deepEqual([...viaIndex].sort(), [...walked].sort(), `seed ${seed}: conflicted subgraph`);
  }
});

test('an event whose auth event is not indexed is left out, with what builds on it', () => {
  const r = assignChains(
    authOrder([
      { eventId: '$b', key: 'k\u0000b', authIds: ['$a', '$unknown'] },
      { eventId: '$c', key: 'k\u0000c', authIds: ['$b'] },
      { eventId: '$a', key: 'k\u0000a', authIds: [] },
    ]),
    { position: () => undefined, keyOf: () => undefined, tail: () => 0, links: new Map() },
    (() => { let n = 0; return () => ++n; })(),
  );
  assert.deepEqual([...r.positions.keys()], ['$a']);
});
