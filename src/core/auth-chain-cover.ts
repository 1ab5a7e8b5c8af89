/**
 * A chain cover index of a room's auth DAG, so that state resolution can
 * tell which events are in which auth chains from a few integers per event
 * instead of walking every auth chain back to the create event.
 *
 * Every indexed event sits at a position (chain, seq). Positions on one chain
 * are ancestors of each other: the event at (c, s) has the event at (c, s-1)
 * in its auth chain. Links say "from (c, s) up, chain t is reached up to seq
 * q", and they are kept closed under one hop: the events an event reaches
 * (its auth chain and itself) are, on its own chain, those up to its seq, and
 * on every other chain t those up to the largest q of the links of its chain
 * with an origin at or below its seq. So the full auth chain of any set of
 * events is a map chain -> highest seq, and set operations on auth chains
 * become per-chain comparisons of integers.
 *
 * Pure: callers load positions and links and store what `assignChains`
 * returns.
 */

export interface ChainPos {
  chain: number;
  seq: number;
}

export interface ChainLink {
  originChain: number;
  originSeq: number;
  targetChain: number;
  targetSeq: number;
}

/** What a set of events reaches (themselves and their auth chains): chain -> highest seq. */
export type Reach = Map<number, number>;

/** Links grouped by origin chain. */
export type LinksByChain = ReadonlyMap<number, readonly ChainLink[]>;

export function groupLinks(links: Iterable<ChainLink>): Map<number, ChainLink[]> {
  const out = new Map<number, ChainLink[]>();
  for (const l of links) {
    let list = out.get(l.originChain);
    if (!list) out.set(l.originChain, (list = []));
    list.push(l);
  }
  return out;
}

function raise(reach: Reach, chain: number, seq: number): void {
  if ((reach.get(chain) ?? 0) < seq) reach.set(chain, seq);
}

/** Adds to `into` what the events at the highest seq per chain in `tops` reach. */
export function addReach(into: Reach, tops: ReadonlyMap<number, number>, links: LinksByChain): Reach {
  for (const [chain, seq] of tops) {
    raise(into, chain, seq);
    for (const l of links.get(chain) ?? []) if (l.originSeq <= seq) raise(into, l.targetChain, l.targetSeq);
  }
  return into;
}

/** Highest seq per chain among positions. */
export function topsOf(positions: Iterable<ChainPos>): Map<number, number> {
  const tops = new Map<number, number>();
  for (const p of positions) raise(tops, p.chain, p.seq);
  return tops;
}

/** Whether `pos` is in what `reach` covers. */
export function covers(reach: Reach, pos: ChainPos): boolean {
  return (reach.get(pos.chain) ?? 0) >= pos.seq;
}

/**
 * The auth chain of a single event, itself excluded: its chain below its
 * seq, and its chain's links from at or below its seq.
 */
export function strictReach(pos: ChainPos, links: LinksByChain): Reach {
  const r: Reach = new Map();
  if (pos.seq > 1) r.set(pos.chain, pos.seq - 1);
  for (const l of links.get(pos.chain) ?? []) if (l.originSeq <= pos.seq) raise(r, l.targetChain, l.targetSeq);
  return r;
}

/** A range of seqs (lo exclusive, hi inclusive) on one chain. */
export interface SeqRange {
  chain: number;
  lo: number;
  hi: number;
}

/**
 * The auth difference (union minus intersection of the sets' full auth
 * chains) as ranges: on each chain, the seqs above the lowest set's reach
 * and up to the highest's.
 */
export function differenceRanges(reaches: readonly Reach[]): SeqRange[] {
  const chains = new Set<number>();
  for (const r of reaches) for (const c of r.keys()) chains.add(c);
  const out: SeqRange[] = [];
  for (const chain of chains) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = 0;
    for (const r of reaches) {
      const s = r.get(chain) ?? 0;
      if (s < lo) lo = s;
      if (s > hi) hi = s;
    }
    if (hi > lo) out.push({ chain, lo, hi });
  }
  return out;
}

/**
 * v2.1's conflicted state subgraph, minus the conflicted events themselves,
 * as ranges: events that are strict ancestors of one conflicted event and
 * strict descendants of another. On one chain the ancestors of a set are a
 * prefix and the descendants a suffix (reach only grows along a chain), so
 * the answer is one range per chain. `links` must hold the links of every
 * chain the conflicted events reach.
 */
export function subgraphRanges(conflicted: readonly ChainPos[], links: LinksByChain): SeqRange[] {
  const ancestorsTop: Reach = new Map();
  for (const c of conflicted) for (const [chain, seq] of strictReach(c, links)) raise(ancestorsTop, chain, seq);
  const out: SeqRange[] = [];
  for (const [chain, top] of ancestorsTop) {
    // Lowest seq on this chain that reaches some conflicted event (other than itself).
    let lowest = Number.POSITIVE_INFINITY;
    for (const c of conflicted) {
      if (c.chain === chain) {
        lowest = Math.min(lowest, c.seq + 1);
        continue;
      }
      for (const l of links.get(chain) ?? []) {
        if (l.targetChain === c.chain && l.targetSeq >= c.seq && l.originSeq < lowest) lowest = l.originSeq;
      }
    }
    if (lowest <= top) out.push({ chain, lo: lowest - 1, hi: top });
  }
  return out;
}

/** A state event to index, with its auth events. */
export interface ChainCandidate {
  eventId: string;
  /** `type\u0000state_key`. */
  key: string;
  authIds: readonly string[];
}

/** What the index already knows about the candidates' auth events. */
export interface ChainKnowledge {
  position(eventId: string): ChainPos | undefined;
  /** `type\u0000state_key` of an indexed event. */
  keyOf(eventId: string): string | undefined;
  /** Highest seq stored on a chain. */
  tail(chain: number): number;
  /** Links of the chains of the indexed auth events. */
  links: LinksByChain;
}

export interface ChainAssignment {
  positions: Map<string, ChainPos>;
  links: ChainLink[];
  /** How many new chain ids `newChain` handed out. */
  newChains: number;
}

/**
 * Places each candidate (in an order where auth events come first) on the
 * chain of an auth event with the same state key that ends its chain, or on
 * a new chain, and adds the links that keep the index closed under one hop.
 * A candidate with an auth event that has no position is left out, and so
 * is everything that builds on it: the index then doesn't cover those
 * events, and resolution over them walks the auth chains instead.
 */
export function assignChains(
  candidates: readonly ChainCandidate[],
  known: ChainKnowledge,
  newChain: () => number,
): ChainAssignment {
  const positions = new Map<string, ChainPos>();
  const keys = new Map<string, string>();
  const tails = new Map<number, number>();
  const links = new Map<number, ChainLink[]>();
  const added: ChainLink[] = [];
  let newChains = 0;
  const pos = (id: string): ChainPos | undefined => positions.get(id) ?? known.position(id);
  const tail = (chain: number): number => tails.get(chain) ?? known.tail(chain);
  const linksOf = (chain: number): readonly ChainLink[] => [...(known.links.get(chain) ?? []), ...(links.get(chain) ?? [])];

  for (const c of candidates) {
    const auth = c.authIds.map((id) => ({ id, pos: pos(id) }));
    if (auth.some((a) => a.pos === undefined)) continue;
    const extend = auth.find((a) => (keys.get(a.id) ?? known.keyOf(a.id)) === c.key && tail(a.pos!.chain) === a.pos!.seq);
    let at: ChainPos;
    if (extend) {
      at = { chain: extend.pos!.chain, seq: extend.pos!.seq + 1 };
    } else {
      at = { chain: newChain(), seq: 1 };
      newChains++;
    }
    const reach: Reach = new Map();
    for (const a of auth) {
      raise(reach, a.pos!.chain, a.pos!.seq);
      for (const l of linksOf(a.pos!.chain)) if (l.originSeq <= a.pos!.seq) raise(reach, l.targetChain, l.targetSeq);
    }
    // What the chain already reaches from below: links implied by it are not written again.
    const below: Reach = new Map();
    for (const l of linksOf(at.chain)) if (l.originSeq < at.seq) raise(below, l.targetChain, l.targetSeq);
    for (const [chain, seq] of reach) {
      if (chain === at.chain || (below.get(chain) ?? 0) >= seq) continue;
      const link = { originChain: at.chain, originSeq: at.seq, targetChain: chain, targetSeq: seq };
      added.push(link);
      let list = links.get(at.chain);
      if (!list) links.set(at.chain, (list = []));
      list.push(link);
    }
    positions.set(c.eventId, at);
    keys.set(c.eventId, c.key);
    tails.set(at.chain, at.seq);
  }
  return { positions, links: added, newChains };
}

/** Candidates ordered so that every auth event among them comes before the events it authorises. */
export function authOrder<T extends ChainCandidate>(candidates: readonly T[]): T[] {
  const byId = new Map(candidates.map((c) => [c.eventId, c]));
  const out: T[] = [];
  const done = new Set<string>();
  for (const root of candidates) {
    if (done.has(root.eventId)) continue;
    const stack: Array<{ c: T; i: number }> = [{ c: root, i: 0 }];
    const onStack = new Set([root.eventId]);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const next = top.c.authIds[top.i++];
      if (next === undefined) {
        stack.pop();
        onStack.delete(top.c.eventId);
        if (!done.has(top.c.eventId)) {
          done.add(top.c.eventId);
          out.push(top.c);
        }
        continue;
      }
      const dep = byId.get(next);
      if (dep && !done.has(next) && !onStack.has(next)) {
        onStack.add(next);
        stack.push({ c: dep, i: 0 });
      }
    }
  }
  return out;
}
