/**
 * State resolution (spec: rooms/v1.md "State resolution", rooms/fragments/
 * v2-state-res.md, rooms/v12.md for v2.1).
 *
 * Pure and synchronous: every event is fetched through the `events` lookup,
 * and events it cannot find are left out (callers guarantee the auth chains
 * are present, or pass an auth chain index's answers and the fewer events
 * those leave to load: see StateResOptions.index). Graph walks are iterative, so deep auth chains cannot
 * overflow the stack, and each is linear in the part of the DAG it visits.
 */

import type { EventWithId, StateMap } from './types.js';
import { stateKey } from './types.js';
import type { RoomVersion } from './room-versions.js';
import {
  authEventIds,
  authEventSelection,
  checkAuth,
  M_CREATE,
  M_JOIN_RULES,
  M_MEMBER,
  M_POWER_LEVELS,
  type AuthOptions,
} from './auth-rules.js';
import { parsePowerLevels, roomCreators, userPowerLevel } from './power-levels.js';
import { resolveV1 } from './state-res-v1.js';

export type EventLookup = (eventId: string) => EventWithId | undefined;

export interface StateResOptions extends AuthOptions {
  /**
   * Events rejected on receipt. They are never used as auth events during the
   * iterative auth checks ("Rejected auth events are deliberately excluded").
   */
  isRejected?: (eventId: string) => boolean;
  /**
   * What an auth chain index (auth-chain-cover.ts) already answered, so that
   * v2 and v2.1 walk no auth chain: then the lookup need only provide the full
   * conflicted set, the events' own auth events, the power levels events
   * above them, and the unconflicted events the auth checks read.
   */
  index?: AuthChainAnswers;
}

export interface AuthChainAnswers {
  /** The auth difference, and for v2.1 the conflicted state subgraph too. */
  fullConflicted: ReadonlySet<string>;
  /** The events of `candidates` in the auth chain of some event of `starts`. */
  inAuthChains(starts: readonly string[], candidates: Iterable<string>): Set<string>;
}

const PL_KEY = stateKey(M_POWER_LEVELS, '');
const CREATE_KEY = stateKey(M_CREATE, '');

/** Resolve several room states into one with the room version's algorithm. */
export function resolveState(
  version: RoomVersion,
  stateSets: StateMap[],
  events: EventLookup,
  opts: StateResOptions = {},
): StateMap {
  if (stateSets.length === 0) return new Map();
  if (stateSets.length === 1) return new Map(stateSets[0]);
  const graph = new AuthGraph(events);
  const { unconflicted, conflicted } = splitConflicts(stateSets, version.stateRes !== 'v1');
  if (conflicted.size === 0) return unconflicted;
  const create = findCreateEvent(version, stateSets, graph);
  if (version.stateRes === 'v1') return resolveV1(version, unconflicted, conflicted, graph, create, opts);
  return resolveV2(version, stateSets, unconflicted, conflicted, graph, create, opts);
}

// ---------------------------------------------------------------------------
// The auth DAG, with memoised lookups.

export class AuthGraph {
  private readonly cache = new Map<string, EventWithId | null>();
  private readonly authCache = new Map<string, string[]>();
  private readonly plParentCache = new Map<string, string | null>();

  constructor(private readonly lookup: EventLookup) {}

  get(id: string): EventWithId | undefined {
    let e = this.cache.get(id);
    if (e === undefined) {
      e = this.lookup(id) ?? null;
      this.cache.set(id, e);
    }
    return e ?? undefined;
  }

  /** Auth event ids of `id` that the lookup can provide. */
  authIds(id: string): string[] {
    let ids = this.authCache.get(id);
    if (ids === undefined) {
      const ev = this.get(id);
      ids = ev ? [...new Set(authEventIds(ev.pdu))].filter((a) => this.get(a) !== undefined) : [];
      this.authCache.set(id, ids);
    }
    return ids;
  }

  /** The m.room.power_levels event among the auth events of `id`, if any. */
  plParent(id: string): string | undefined {
    let p = this.plParentCache.get(id);
    if (p === undefined) {
      p = this.authIds(id).find((a) => {
        const pdu = this.get(a)!.pdu;
        return pdu.type === M_POWER_LEVELS && pdu.state_key === '';
      }) ?? null;
      this.plParentCache.set(id, p);
    }
    return p ?? undefined;
  }

  /**
   * Union of the auth chains of `starts` (the starts themselves only when
   * another start reaches them). Walking stops at `stopAt`, which must be
   * closed under taking auth chains.
   */
  chainOf(starts: Iterable<string>, stopAt?: ReadonlySet<string>, includeStarts = false): Set<string> {
    const out = new Set<string>();
    const stack: string[] = [];
    for (const s of starts) {
      if (includeStarts) {
        if (this.get(s)) stack.push(s);
      } else {
        for (const a of this.authIds(s)) stack.push(a);
      }
    }
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (out.has(id) || stopAt?.has(id)) continue;
      out.add(id);
      for (const a of this.authIds(id)) if (!out.has(a)) stack.push(a);
    }
    return out;
  }
}

/** The auth chain of the given events (all events reachable through auth_events). */
export function authChain(eventIds: Iterable<string>, events: EventLookup): Set<string> {
  return new AuthGraph(events).chainOf(eventIds);
}

// ---------------------------------------------------------------------------
// Definitions shared by the algorithms

export interface Split {
  unconflicted: StateMap;
  /** Conflicted state set: key -> the distinct event ids the sets hold for it. */
  conflicted: Map<string, Set<string>>;
}

/**
 * "Unconflicted state map and conflicted state set". The versions differ on
 * a key that only some of the states hold:
 * - v2 (rooms/fragments/v2-state-res.md): a key is unconflicted only when it
 *   "is present in every Sᵢ with the same value", so a missing key conflicts;
 * - v1 (rooms/v1.md): "A conflict occurs between states where those states
 *   have different event_ids for the same (event_type, state_key)": a state
 *   without the key has no event id for it, so the key is unconflicted when
 *   the states that hold it agree.
 */
export function splitConflicts(sets: StateMap[], missingKeyConflicts: boolean): Split {
  const unconflicted: StateMap = new Map();
  const conflicted = new Map<string, Set<string>>();
  const keys = new Set<string>();
  for (const s of sets) for (const k of s.keys()) keys.add(k);
  for (const k of keys) {
    const values = new Set<string>();
    let missing = false;
    for (const s of sets) {
      const v = s.get(k);
      if (v === undefined) missing = true;
      else values.add(v);
    }
    if (values.size === 1 && !(missing && missingKeyConflicts)) unconflicted.set(k, values.values().next().value!);
    else conflicted.set(k, values);
  }
  return { unconflicted, conflicted };
}

function findCreateEvent(version: RoomVersion, sets: StateMap[], graph: AuthGraph): EventWithId | undefined {
  for (const s of sets) {
    const id = s.get(CREATE_KEY);
    const ev = id === undefined ? undefined : graph.get(id);
    if (ev) return ev;
  }
  // State handed over without the create event: v12 names it in the room id,
  // earlier versions have it at the root of every auth chain.
  const all = new Set<string>();
  for (const s of sets) for (const id of s.values()) all.add(id);
  if (version.roomIdIsCreateEventHash) {
    for (const id of all) {
      const roomId = graph.get(id)?.pdu.room_id;
      const c = typeof roomId === 'string' ? graph.get(`$${roomId.slice(1)}`) : undefined;
      if (c) return c;
    }
  }
  for (const id of graph.chainOf(all, undefined, true)) {
    const ev = graph.get(id)!;
    if (ev.pdu.type === M_CREATE) return ev;
  }
  return undefined;
}

/** "Power events": may remove someone's ability to do something. */
export function isPowerEvent(ev: EventWithId): boolean {
  const pdu = ev.pdu;
  if (typeof pdu.state_key !== 'string') return false;
  if (pdu.type === M_POWER_LEVELS || pdu.type === M_JOIN_RULES) return true;
  if (pdu.type === M_MEMBER) {
    const m = pdu.content?.membership;
    return (m === 'leave' || m === 'ban') && pdu.sender !== pdu.state_key;
  }
  return false;
}

/**
 * "Auth difference": ∪Cᵢ − ∩Cᵢ over the full auth chains of the state sets.
 *
 * Cᵢ is taken to contain Sᵢ's own events as well as their auth chains. The
 * spec's wording ("the union of the auth chains for each event in Sᵢ") could
 * be read as excluding them, but then an unconflicted event that one fork
 * happens to cite (say, the join of a user who only acted on that fork) would
 * land in the auth difference and perturb the ordering; Synapse counts an
 * event as reachable from every set that contains it, and matching it keeps
 * resolved state convergent across servers.
 *
 * The part of every Cᵢ coming from the unconflicted events is computed once;
 * each set then only walks from its conflicted events down to it.
 */
function authDifference(sets: StateMap[], split: Split, graph: AuthGraph): Set<string> {
  const common = graph.chainOf(split.unconflicted.values(), undefined, true);
  const counts = new Map<string, number>();
  for (const s of sets) {
    const starts: string[] = [];
    for (const [k, v] of s) if (split.conflicted.has(k)) starts.push(v);
    for (const id of graph.chainOf(starts, common, true)) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const diff = new Set<string>();
  for (const [id, n] of counts) if (n < sets.length) diff.add(id);
  return diff;
}

/**
 * v2.1 "Conflicted state subgraph": every event on an auth_events path between
 * two conflicted events, endpoints included. Computed as the events reachable
 * from the conflicted set that can themselves reach it.
 */
function conflictedSubgraphOf(conflicted: ReadonlySet<string>, graph: AuthGraph): Set<string> {
  const reachesConflicted = new Map<string, boolean>();
  const reachedFromConflicted = new Set<string>();
  const onStack = new Set<string>();
  for (const root of conflicted) {
    if (reachesConflicted.has(root) || graph.get(root) === undefined) continue;
    const stack: Array<{ id: string; i: number }> = [{ id: root, i: 0 }];
    onStack.add(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const kids = graph.authIds(top.id);
      if (top.i < kids.length) {
        const k = kids[top.i++]!;
        reachedFromConflicted.add(k);
        if (!reachesConflicted.has(k) && !onStack.has(k)) {
          onStack.add(k);
          stack.push({ id: k, i: 0 });
        }
      } else {
        stack.pop();
        onStack.delete(top.id);
        reachesConflicted.set(top.id, kids.some((k) => conflicted.has(k) || reachesConflicted.get(k) === true));
      }
    }
  }
  const out = new Set<string>();
  for (const [id, reaches] of reachesConflicted) {
    const isConflicted = conflicted.has(id);
    if (isConflicted ? reaches || reachedFromConflicted.has(id) : reaches) out.add(id);
  }
  return out;
}

/** Exposed for tests and tooling: the v2.1 conflicted state subgraph of a set of events. */
export function conflictedStateSubgraph(conflicted: Iterable<string>, events: EventLookup): Set<string> {
  return conflictedSubgraphOf(new Set(conflicted), new AuthGraph(events));
}

// ---------------------------------------------------------------------------
// Orderings

class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}
  get size(): number { return this.items.length; }
  push(x: T): void {
    const a = this.items;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** The sender's power level "when looking at their respective auth_events". */
function senderPowerFromAuthEvents(id: string, graph: AuthGraph, version: RoomVersion, creators: Set<string>): number {
  const ev = graph.get(id)!;
  const plId = graph.plParent(id);
  const content = plId === undefined ? undefined : graph.get(plId)!.pdu.content;
  return userPowerLevel(parsePowerLevels(content, version, creators), ev.pdu.sender);
}

/**
 * "Reverse topological power ordering": Kahn's algorithm over the auth DAG
 * restricted to `ids`, taking the smallest candidate each step by (sender
 * power desc, origin_server_ts asc, event_id asc).
 */
function reverseTopologicalPowerOrder(
  ids: ReadonlySet<string>, graph: AuthGraph, version: RoomVersion, creators: Set<string>,
): string[] {
  interface Node { id: string; power: number; ts: number }
  const pending = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  const nodes = new Map<string, Node>();
  for (const id of ids) {
    const deps = graph.authIds(id).filter((a) => ids.has(a));
    pending.set(id, deps.length);
    for (const d of deps) {
      let list = dependents.get(d);
      if (!list) dependents.set(d, (list = []));
      list.push(id);
    }
    nodes.set(id, {
      id,
      power: senderPowerFromAuthEvents(id, graph, version, creators),
      ts: graph.get(id)!.pdu.origin_server_ts,
    });
  }
  const heap = new MinHeap<Node>((x, y) => {
    if (x.power !== y.power) return x.power > y.power;
    if (x.ts !== y.ts) return x.ts < y.ts;
    return x.id < y.id;
  });
  for (const [id, n] of pending) if (n === 0) heap.push(nodes.get(id)!);
  const out: string[] = [];
  while (heap.size > 0) {
    const n = heap.pop()!;
    out.push(n.id);
    for (const d of dependents.get(n.id) ?? []) {
      const left = pending.get(d)! - 1;
      pending.set(d, left);
      if (left === 0) heap.push(nodes.get(d)!);
    }
  }
  return out;
}

/**
 * "Mainline ordering" based on the power levels event `pl`: by mainline
 * position descending (∞ first), then origin_server_ts, then event id.
 */
function mainlineOrder(ids: Iterable<string>, pl: string | undefined, graph: AuthGraph): string[] {
  const mainline = new Map<string, number>();
  for (let p = pl, i = 0; p !== undefined && !mainline.has(p); p = graph.plParent(p), i++) mainline.set(p, i);

  // Position of the first mainline event at or above a power levels event.
  const memo = new Map<string, number>();
  const positionFrom = (start: string | undefined): number => {
    const path: string[] = [];
    const seen = new Set<string>();
    let pos = Number.POSITIVE_INFINITY;
    for (let cur = start; cur !== undefined && !seen.has(cur); cur = graph.plParent(cur)) {
      const onMainline = mainline.get(cur);
      if (onMainline !== undefined) { pos = onMainline; break; }
      const known = memo.get(cur);
      if (known !== undefined) { pos = known; break; }
      seen.add(cur);
      path.push(cur);
    }
    for (const x of path) memo.set(x, pos);
    return pos;
  };

  const keyed = [...ids].map((id) => ({
    id,
    pos: positionFrom(graph.plParent(id)),
    ts: graph.get(id)!.pdu.origin_server_ts,
  }));
  keyed.sort((x, y) => {
    if (x.pos !== y.pos) return x.pos > y.pos ? -1 : 1;
    if (x.ts !== y.ts) return x.ts < y.ts ? -1 : 1;
    return x.id < y.id ? -1 : x.id > y.id ? 1 : 0;
  });
  return keyed.map((k) => k.id);
}

/**
 * "Iterative auth checks": apply each state event that the auth rules allow,
 * taking each needed (type, state_key) from the state being built and falling
 * back to the event's own (non-rejected) auth events.
 */
function iterativeAuthChecks(
  order: string[], initial: StateMap, graph: AuthGraph, version: RoomVersion,
  create: EventWithId | undefined, opts: StateResOptions,
): StateMap {
  const state: StateMap = new Map(initial);
  const usable = (id: string): EventWithId | undefined =>
    opts.isRejected?.(id) ? undefined : graph.get(id);
  for (const id of order) {
    const ev = graph.get(id);
    if (!ev || typeof ev.pdu.state_key !== 'string') continue;
    const auth = new Map<string, EventWithId>();
    for (const a of graph.authIds(id)) {
      const ae = usable(a);
      if (ae && typeof ae.pdu.state_key === 'string') auth.set(stateKey(ae.pdu.type, ae.pdu.state_key), ae);
    }
    for (const [t, sk] of authEventSelection(ev.pdu, version)) {
      const k = stateKey(t, sk);
      const sid = state.get(k);
      const se = sid === undefined ? undefined : usable(sid);
      if (se) auth.set(k, se);
    }
    const result = checkAuth(ev, (t, sk) => auth.get(stateKey(t, sk)), version, create, opts);
    if (result.allowed) state.set(stateKey(ev.pdu.type, ev.pdu.state_key), id);
  }
  return state;
}

// ---------------------------------------------------------------------------
// v2 and v2.1

function resolveV2(
  version: RoomVersion, sets: StateMap[], unconflicted: StateMap, conflictedByKey: Map<string, Set<string>>,
  graph: AuthGraph, create: EventWithId | undefined, opts: StateResOptions,
): StateMap {
  const v21 = version.stateRes === 'v2.1';
  const conflicted = new Set<string>();
  for (const ids of conflictedByKey.values()) for (const id of ids) if (graph.get(id)) conflicted.add(id);

  const full = new Set(conflicted);
  if (opts.index) {
    for (const id of opts.index.fullConflicted) if (graph.get(id)) full.add(id);
  } else {
    for (const id of authDifference(sets, { unconflicted, conflicted: conflictedByKey }, graph)) full.add(id);
    if (v21) for (const id of conflictedSubgraphOf(conflicted, graph)) full.add(id);
  }

  // Step 1: power events and the parts of their auth chains in the full conflicted set.
  const power = [...full].filter((id) => isPowerEvent(graph.get(id)!));
  const x = new Set(power);
  const inChains = opts.index ? opts.index.inAuthChains(power, full) : [...graph.chainOf(power)].filter((id) => full.has(id));
  for (const id of inChains) x.add(id);
  const creators = create ? roomCreators(create.pdu, version) : new Set<string>();
  const powerOrder = reverseTopologicalPowerOrder(x, graph, version, creators);

  // Step 2: v2 starts from the unconflicted state, v2.1 from nothing.
  const partial = iterativeAuthChecks(powerOrder, v21 ? new Map() : unconflicted, graph, version, create, opts);

  // Steps 3-4: everything else, in mainline order of the resolved power levels.
  const rest = [...full].filter((id) => !x.has(id));
  const restOrder = mainlineOrder(rest, partial.get(PL_KEY), graph);
  const resolved = iterativeAuthChecks(restOrder, partial, graph, version, create, opts);

  // Step 5: unconflicted state always wins.
  for (const [k, v] of unconflicted) resolved.set(k, v);
  return resolved;
}
