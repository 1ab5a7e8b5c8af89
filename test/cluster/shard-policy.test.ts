import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignShards, maxHeld, ranking, SHARDS, shardOf, shardsOf, shares } from '../../src/cluster/shard-policy.js';

// The shard policy is pure; these cases run without a database.
const three = ['http://127.0.0.2:8008', 'http://127.0.0.3:8008', 'http://127.0.0.4:8008'];

function counts(owners: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const o of owners) m.set(o, (m.get(o) ?? 0) + 1);
  return m;
}

test('a destination always falls in the same shard, and names spread over all 64', () => {
  assert.equal(shardOf('matrix.org'), shardOf('matrix.org'));
  const per = new Array(SHARDS).fill(0);
  for (let i = 0; i < 6400; i++) per[shardOf(`server${i}.example`)]++;
  assert.ok(Math.min(...per) >= 60 && Math.max(...per) <= 150, `${Math.min(...per)}..${Math.max(...per)} per shard`);
});

test('one node is given every shard', () => {
  assert.deepEqual(shardsOf('solo', ['solo']), Array.from({ length: SHARDS }, (_, i) => i));
  assert.equal(maxHeld(1), SHARDS + 1);
});

test('three nodes get 22, 21 and 21 shards, whatever order they are listed in', () => {
  const owners = assignShards(three);
  assert.equal(owners.length, SHARDS);
  assert.ok(owners.every((o) => three.includes(o)));
  assert.deepEqual([...counts(owners).values()].sort(), [21, 21, 22]);
  assert.deepEqual(assignShards([...three].reverse()), owners);
  assert.equal(maxHeld(3), 23, 'ceil(64/3)+1');
  assert.deepEqual([...shares(three).values()], [22, 21, 21]);
  for (const n of [2, 4, 5, 7]) {
    const nodes = Array.from({ length: n }, (_, i) => `node-${i}`);
    const c = [...counts(assignShards(nodes)).values()];
    assert.equal(c.length, n);
    assert.ok(Math.max(...c) - Math.min(...c) <= 1, `${n} nodes: ${c}`);
  }
});

test('shards mostly go to the node that ranks first for them', () => {
  const owners = assignShards(three);
  const first = owners.filter((o, shard) => ranking(shard, three)[0] === o).length;
  const notLast = owners.filter((o, shard) => ranking(shard, three)[2] !== o).length;
  assert.ok(first >= SHARDS * 0.7, `${first} of ${SHARDS} with their first choice`);
  assert.ok(notLast >= SHARDS * 0.95, `${notLast} of ${SHARDS} not with their last choice`);
});

test('a node that leaves gives only its shards away (nearly); when it comes back it is given the same ones', () => {
  const before = assignShards(three);
  const gone = three[1]!;
  const after = assignShards([three[0]!, three[2]!]);
  assert.deepEqual([...counts(after).values()].sort(), [32, 32]);
  const kept = before.filter((o, shard) => o !== gone && after[shard] === o).length;
  const hadThem = before.filter((o) => o !== gone).length;
  assert.ok(kept >= hadThem - 4, `the others kept ${kept} of their ${hadThem}`);
  assert.deepEqual(assignShards(three), before, 'the same shards come back');
});
