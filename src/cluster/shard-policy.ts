/**
 * How single-owner work sharded by key (the federation sender, by
 * destination) is shared out among the live nodes (CLUSTER.md 5). Pure:
 * every node computes the same answer from the same list of nodes.
 *
 * Each shard ranks the nodes by a rendezvous hash of (node, shard); shards
 * then go to their best-ranked node that still has room, the room being an
 * even share (`shares`). So a node that leaves gives up only its shares'
 * worth, and a node that comes back under the same name is given the same
 * shards again.
 */

export const SHARDS = 64;

/** FNV-1a over the string's UTF-16 code units, then a finalising mix so nearby inputs spread. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The shard a key (a destination server name) belongs to. */
export function shardOf(key: string, shards = SHARDS): number {
  return hash32(key) % shards;
}

/** A node's rendezvous score for a shard: the higher, the more the shard prefers that node. */
export function score(node: string, shard: number): number {
  return hash32(`${node}\u0000${shard}`);
}

/** The nodes in the order `shard` prefers them. */
export function ranking(shard: number, nodes: readonly string[]): string[] {
  return [...nodes].sort((a, b) => score(b, shard) - score(a, shard) || (a < b ? -1 : a > b ? 1 : 0));
}

/** The most shards one node holds: an even share and one more, so a node can cover while the others catch up. */
export function maxHeld(alive: number, shards = SHARDS): number {
  return Math.ceil(shards / Math.max(1, alive)) + 1;
}

/** How many shards each node is given: `shards / n`, rounded up for the first `shards % n` nodes in name order. */
export function shares(nodes: readonly string[], shards = SHARDS): Map<string, number> {
  const sorted = [...new Set(nodes)].sort();
  const base = Math.floor(shards / Math.max(1, sorted.length));
  const extra = shards - base * sorted.length;
  return new Map(sorted.map((n, i) => [n, base + (i < extra ? 1 : 0)]));
}

/**
 * The owner of every shard (index = shard). (shard, node) pairs are taken
 * best score first, and a shard goes to the node of its best pair that still
 * has room: with one node it owns everything, and the counts never differ by
 * more than one.
 */
export function assignShards(nodes: readonly string[], shards = SHARDS): string[] {
  const room = shares(nodes, shards);
  const owner: (string | undefined)[] = new Array(shards).fill(undefined);
  if (room.size === 0) return [];
  const pairs: Array<{ shard: number; node: string; s: number }> = [];
  for (let shard = 0; shard < shards; shard++) for (const node of room.keys()) pairs.push({ shard, node, s: score(node, shard) });
  pairs.sort((a, b) => b.s - a.s || a.shard - b.shard || (a.node < b.node ? -1 : 1));
  for (const p of pairs) {
    if (owner[p.shard] !== undefined || room.get(p.node)! === 0) continue;
    owner[p.shard] = p.node;
    room.set(p.node, room.get(p.node)! - 1);
  }
  return owner as string[];
}

/** The shards `node` is given when `nodes` are alive. */
export function shardsOf(node: string, nodes: readonly string[], shards = SHARDS): number[] {
  const owners = assignShards(nodes, shards);
  const out: number[] = [];
  owners.forEach((o, shard) => {
    if (o === node) out.push(shard);
  });
  return out;
}
