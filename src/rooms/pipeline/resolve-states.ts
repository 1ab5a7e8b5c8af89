import { authEventIds, authEventSelection } from '../../core/auth-rules.js';
import {
  addReach,
  covers,
  differenceRanges,
  strictReach,
  subgraphRanges,
  topsOf,
  type ChainLink,
  type Reach,
  type SeqRange,
} from '../../core/auth-chain-cover.js';
import type { RoomVersion } from '../../core/room-versions.js';
import { resolveState, splitConflicts } from '../../core/state-res.js';
import { stateKey, type StateMap } from '../../core/types.js';
import type { DbOrTx } from '../../db/schema.js';
import type { StoredEvent } from '../events/stored-event.js';
import type { BatchEvent, ChainOverlay } from '../state/auth-chain-index.js';

/** Events that state resolution or an auth check needed but that are not stored. */
export class MissingEventsError extends Error {
  constructor(readonly ids: string[]) {
    super(`events needed for state resolution are missing: ${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''}`);
  }
}

/**
 * State resolution over stored events (and those of the batch being
 * planned, through `load`): the auth chains of every event in the sets are
 * loaded level by level, and an event the algorithm would need but that is
 * not here fails the resolution rather than being left out silently, so the
 * caller can fetch it or give up on the event.
 */
export async function resolveStates(
  version: RoomVersion,
  sets: StateMap[],
  load: (ids: string[]) => Promise<Map<string, StoredEvent>>,
  index?: IndexAccess,
): Promise<StateMap> {
  if (sets.length === 1) return sets[0]!;
  if (index && version.stateRes !== 'v1') {
    const viaIndex = await resolveWithIndex(version, sets, load, index);
    if (viaIndex) return viaIndex;
  }
  return resolveByWalking(version, sets, load);
}

/** The auth chain index as the batch being planned sees it. */
export interface IndexAccess {
  db: DbOrTx;
  chains: ChainOverlay;
  /** Events of the batch, not stored yet. */
  batch: (id: string) => BatchEvent | undefined;
}

/** Resolution that loads every auth chain: for v1, and for history the index does not cover. */
async function resolveByWalking(
  version: RoomVersion,
  sets: StateMap[],
  load: (ids: string[]) => Promise<Map<string, StoredEvent>>,
): Promise<StateMap> {
  const closure = new Map<string, StoredEvent>();
  let frontier = [...new Set(sets.flatMap((s) => [...s.values()]))];
  const missing = new Set<string>();
  while (frontier.length > 0) {
    const loaded = await load(frontier);
    const next = new Set<string>();
    for (const id of frontier) {
      const ev = loaded.get(id);
      if (!ev) {
        missing.add(id);
        continue;
      }
      closure.set(id, ev);
      for (const a of authEventIds(ev.pdu)) if (!closure.has(a) && !loaded.has(a)) next.add(a);
    }
    frontier = [...next].filter((id) => !closure.has(id));
  }
  if (missing.size > 0) throw new MissingEventsError([...missing]);
  return resolveState(version, sets, (id) => closure.get(id), {
    isRejected: (id) => closure.get(id)?.rejectedReason != null,
  });
}

/** Event types the auth rules read from the state (the auth event selection of every room version). */
const AUTH_TYPES = new Set(['m.room.create', 'm.room.power_levels', 'm.room.join_rules', 'm.room.member', 'm.room.third_party_invite']);

/** Whether the states differ at any key of a type the auth rules read. */
export function conflictsTouchAuth(sets: StateMap[]): boolean {
  const [first, ...rest] = sets;
  if (!first) return false;
  const keys = new Set<string>();
  for (const s of sets) for (const k of s.keys()) keys.add(k);
  for (const k of keys) {
    const type = k.slice(0, k.indexOf('\u0000'));
    if (!AUTH_TYPES.has(type)) continue;
    const v = first.get(k);
    if (rest.some((s) => s.get(k) !== v)) return true;
  }
  return false;
}

/**
 * v2 / v2.1 resolution with the auth chain index: the auth difference and the
 * conflicted subgraph come from per-chain integer comparisons, so only the
 * events the algorithm then reads are loaded: the full conflicted set, their
 * auth events, the power levels events above those, and the unconflicted
 * events the auth checks look up. Null when an event of the sets is not on
 * the index (history stored before it, or an event not here), or when the
 * history is so short that walking it is cheaper (`shortHistory`; tests that
 * compare the two ways turn this off).
 */
export async function resolveWithIndex(
  version: RoomVersion,
  sets: StateMap[],
  load: (ids: string[]) => Promise<Map<string, StoredEvent>>,
  ix: IndexAccess,
  walkShortHistory = true,
): Promise<StateMap | null> {
  const all = new Set<string>();
  for (const s of sets) for (const id of s.values()) all.add(id);
  const { unconflicted, conflicted } = splitConflicts(sets, true);
  if (conflicted.size === 0) return unconflicted;
  const conflictedIds = new Set<string>();
  for (const ids of conflicted.values()) for (const id of ids) conflictedIds.add(id);
  if (walkShortHistory && mostlyConflicted(all.size, conflictedIds.size)) return null;
  const pos = await ix.chains.place(ix.db, all, ix.batch);
  if (!pos) return null;
  if (walkShortHistory && shortHistory(pos.values(), conflictedIds.size)) return null;
  const common = topsOf([...unconflicted.values()].map((id) => pos.get(id)!));
  const perSet = sets.map((s) => topsOf([...s].filter(([k]) => conflicted.has(k)).map(([, id]) => pos.get(id)!)));
  const links = await linksFor(ix, [common, ...perSet]);
  const commonReach = addReach(new Map(), common, links);
  const reaches = perSet.map((tops) => addReach(new Map(commonReach), tops, links));

  // Events at known positions (those of the sets) need no read.
  const at = new Map<string, string>();
  for (const [id, p] of pos) at.set(`${p.chain}:${p.seq}`, id);
  const eventsIn = async (ranges: SeqRange[]): Promise<string[]> => {
    const found: string[] = [];
    const unknown: SeqRange[] = [];
    for (const r of ranges) {
      for (let q = r.lo + 1; q <= r.hi; q++) {
        const id = at.get(`${r.chain}:${q}`);
        if (id !== undefined) found.push(id);
        else {
          const last = unknown[unknown.length - 1];
          if (last && last.chain === r.chain && last.hi === q - 1) last.hi = q;
          else unknown.push({ chain: r.chain, lo: q - 1, hi: q });
        }
      }
    }
    return unknown.length === 0 ? found : [...found, ...(await ix.chains.eventsInRanges(ix.db, unknown))];
  };
  const fullConflicted = new Set(await eventsIn(differenceRanges(reaches)));
  if (version.stateRes === 'v2.1') {
    const cPos = [...conflictedIds].map((id) => pos.get(id)!);
    const ancestorTops = new Map<number, number>();
    for (const p of cPos) for (const [c, q] of strictReach(p, links)) if ((ancestorTops.get(c) ?? 0) < q) ancestorTops.set(c, q);
    const subLinks = await ix.chains.links(ix.db, ancestorTops);
    for (const [c, l] of links) if (!subLinks.has(c)) subLinks.set(c, l);
    for (const id of await eventsIn(subgraphRanges(cPos, subLinks))) fullConflicted.add(id);
  }

  const full = new Set([...conflictedIds, ...fullConflicted]);
  const events = await loadForResolution(version, full, unconflicted, load, ix);
  const fullPos = await ix.chains.place(ix.db, full, ix.batch);
  if (!fullPos) return null;
  const fullLinks = await linksFor(ix, [topsOf(fullPos.values())]);
  return resolveState(version, sets, (id) => events.get(id), {
    isRejected: (id) => events.get(id)?.rejectedReason != null,
    index: {
      fullConflicted,
      inAuthChains(starts, candidates) {
        const reach: Reach = new Map();
        for (const s of starts) {
          for (const [c, q] of strictReach(fullPos.get(s)!, fullLinks)) if ((reach.get(c) ?? 0) < q) reach.set(c, q);
        }
        const out = new Set<string>();
        for (const id of candidates) {
          const p = fullPos.get(id);
          if (p && covers(reach, p)) out.add(id);
        }
        return out;
      },
    },
  });
}

/**
 * Whether most of many events conflict (a fork over many distinct keys): then even placing them
 * on the index costs about what walking their auth chains does, which are usually short.
 */
export function mostlyConflicted(events: number, conflicted: number): boolean {
  return events >= 200 && conflicted * 2 >= events;
}

/**
 * Whether the auth chains below the sets' events hold few events besides the
 * conflicted ones: a chain's seq counts the events on it up to there, so their
 * sum bounds from below what walking loads. When it is within twice the
 * conflicted set (a fork over many distinct keys with shallow auth chains),
 * walking reads about what the index would and saves its link reads; with a
 * long history (many changes under the same keys) the index wins by far.
 */
export function shortHistory(positions: Iterable<{ chain: number; seq: number }>, conflicted: number): boolean {
  const top = new Map<number, number>();
  for (const p of positions) if ((top.get(p.chain) ?? 0) < p.seq) top.set(p.chain, p.seq);
  let below = 0;
  for (const q of top.values()) below += q;
  return below <= 2 * conflicted;
}

/** Links of every chain in `tops`, up to its highest seq there. */
async function linksFor(ix: IndexAccess, tops: ReadonlyArray<ReadonlyMap<number, number>>): Promise<Map<number, ChainLink[]>> {
  const need = new Map<number, number>();
  for (const t of tops) for (const [c, q] of t) if ((need.get(c) ?? 0) < q) need.set(c, q);
  return ix.chains.links(ix.db, need);
}

/**
 * The events resolution reads besides the auth chains: the full conflicted
 * set and their auth events, every power levels event above them (mainline
 * ordering walks up from any of them), and the unconflicted events at the
 * keys their auth checks select. An event in the first two missing fails the
 * resolution, as a missing auth chain event does.
 */
async function loadForResolution(
  version: RoomVersion,
  full: ReadonlySet<string>,
  unconflicted: StateMap,
  load: (ids: string[]) => Promise<Map<string, StoredEvent>>,
  ix: IndexAccess,
): Promise<Map<string, StoredEvent>> {
  const events = await load([...full]);
  const need = new Set<string>();
  for (const id of full) {
    const ev = events.get(id);
    if (!ev) throw new MissingEventsError([id]);
    for (const a of authEventIds(ev.pdu)) need.add(a);
    for (const [t, sk] of authEventSelection(ev.pdu, version)) {
      const u = unconflicted.get(stateKey(t, sk));
      if (u !== undefined) need.add(u);
    }
  }
  for (const key of [stateKey('m.room.create', ''), stateKey('m.room.power_levels', '')]) {
    const u = unconflicted.get(key);
    if (u !== undefined) need.add(u);
  }
  // Power levels events are followed up to the create event, with all their auth events: mainline
  // ordering walks up through them, asking which of an event's auth events is the power levels one.
  // A power levels event usually continues the chain of the one before it, so each round reads
  // every earlier event on the chains of those just found at once, not one parent at a time.
  const isPl = (ev: StoredEvent): boolean => ev.pdu.type === 'm.room.power_levels' && ev.pdu.state_key === '';
  const walked = new Set<string>();
  let frontier = [...need].filter((id) => !events.has(id));
  while (frontier.length > 0) {
    for (const [id, ev] of await load(frontier)) events.set(id, ev);
    const pls = [...events.values()].filter((e) => isPl(e) && !walked.has(e.eventId)).map((e) => e.eventId);
    for (const id of pls) walked.add(id);
    const next = new Set<string>();
    const pos = await ix.chains.place(ix.db, pls, ix.batch);
    if (pos) {
      const below = [...pos.values()].filter((p) => p.seq > 1).map((p) => ({ chain: p.chain, lo: 0, hi: p.seq - 1 }));
      for (const id of await ix.chains.eventsInRanges(ix.db, below)) if (!events.has(id)) next.add(id);
      for (const [id, ev] of await load([...next])) events.set(id, ev);
      next.clear();
    }
    for (const ev of events.values()) {
      if (!isPl(ev)) continue;
      for (const a of authEventIds(ev.pdu)) if (!events.has(a)) next.add(a);
    }
    frontier = [...next];
  }
  return events;
}
