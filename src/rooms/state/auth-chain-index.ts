import {
  assignChains,
  authOrder,
  type ChainCandidate,
  type ChainLink,
  type ChainPos,
  type SeqRange,
} from '../../core/auth-chain-cover.js';
import { authEventIds } from '../../core/auth-rules.js';
import type { Pdu } from '../../core/types.js';
import { boundedCache } from '../../bounded-cache.js';
import type { DbOrTx } from '../../db/schema.js';
import { nextPositions } from '../../db/stream-positions.js';
import {
  insertChainIndex,
  selectInRanges,
  selectLinks,
  selectPositions,
  selectTails,
  type IndexedEvent,
} from '../store/auth-chain-table.js';

/**
 * The stored auth chain cover index (core/auth-chain-cover.ts), with caches
 * of what never changes once committed: an event's position, and a chain's
 * links up to a seq already stored (links are written with the position
 * they start from, so every link up to a stored seq is there).
 */
export class AuthChainIndex {
  private readonly positionCache = boundedCache<string, IndexedEvent>(100_000);
  private readonly linkCache = boundedCache<number, { upTo: number; links: ChainLink[] }>(20_000);

  /** Positions of the indexed events among `ids`. */
  async positions(db: DbOrTx, ids: Iterable<string>): Promise<Map<string, IndexedEvent>> {
    const out = new Map<string, IndexedEvent>();
    const ask: string[] = [];
    for (const id of new Set(ids)) {
      const p = this.positionCache.get(id);
      if (p) out.set(id, p);
      else ask.push(id);
    }
    if (ask.length > 0) {
      for (const [id, p] of await selectPositions(db, ask)) {
        this.positionCache.set(id, p);
        out.set(id, p);
      }
    }
    return out;
  }

  /** Links of stored chains, each needed up to a stored seq. */
  async links(db: DbOrTx, need: ReadonlyMap<number, number>): Promise<Map<number, ChainLink[]>> {
    const out = new Map<number, ChainLink[]>();
    const ask: number[] = [];
    for (const [chain, upTo] of need) {
      if (chain < 0) continue;
      const c = this.linkCache.get(chain);
      if (c && c.upTo >= upTo) out.set(chain, c.links);
      else ask.push(chain);
    }
    if (ask.length > 0) {
      const fetched = new Map<number, ChainLink[]>(ask.map((c) => [c, []]));
      for (const l of await selectLinks(db, ask)) fetched.get(l.originChain)!.push(l);
      for (const [chain, links] of fetched) {
        const upTo = need.get(chain)!;
        const kept = links.filter((l) => l.originSeq <= upTo);
        this.linkCache.set(chain, { upTo, links: kept });
        out.set(chain, kept);
      }
    }
    return out;
  }

  async tails(db: DbOrTx, chains: readonly number[]): Promise<Map<number, number>> {
    return selectTails(db, chains.filter((c) => c >= 0));
  }

  eventsInRanges(db: DbOrTx, ranges: readonly SeqRange[]): Promise<string[]> {
    return selectInRanges(db, ranges.filter((r) => r.chain >= 0));
  }

  /** Positions a committed batch wrote: later resolutions need not read them back. */
  remember(rows: ReadonlyArray<[string, IndexedEvent]>): void {
    for (const [id, p] of rows) this.positionCache.set(id, p);
  }

  /** A fresh overlay for one batch of events. */
  overlay(): ChainOverlay {
    return new ChainOverlay(this);
  }
}

/** An event of the batch being planned or written, not stored yet. */
export interface BatchEvent {
  pdu: Pdu;
}

/**
 * The index as a batch of events sees it: the stored index plus positions
 * given to the batch's state events before they are written (new chains get
 * negative ids until `write` takes real ones), so state resolution in the
 * middle of a batch uses the index too. `write` stores it in the batch's
 * transaction, after checking that no other writer extended the same chains.
 */
export class ChainOverlay {
  private readonly placed = new Map<string, IndexedEvent>();
  private readonly newLinks: ChainLink[] = [];
  private readonly linksByChain = new Map<number, ChainLink[]>();
  private readonly tails = new Map<number, number>();
  /** Stored chains the batch extends, with the tail they had when it did. */
  private readonly extended = new Map<number, number>();
  private tempChains = 0;
  private stored: Array<[string, IndexedEvent]> = [];

  constructor(readonly index: AuthChainIndex) {}

  /**
   * Positions of `ids`: stored ones, and events of the batch (given by
   * `batch`) placed now with the batch's events they depend on. Null when
   * one of them, or an event it depends on, is neither indexed nor in the
   * batch (history stored before the index, or an event not here at all).
   */
  async place(db: DbOrTx, ids: Iterable<string>, batch: (id: string) => BatchEvent | undefined): Promise<Map<string, IndexedEvent> | null> {
    const out = new Map<string, IndexedEvent>();
    const candidates = new Map<string, ChainCandidate>();
    const requested = [...new Set(ids)];
    let frontier = requested;
    const authOfCandidates = new Map<string, IndexedEvent>();
    while (frontier.length > 0) {
      const ask = frontier.filter((id) => !this.placed.has(id) && !candidates.has(id));
      for (const id of frontier) {
        const p = this.placed.get(id);
        if (p) out.set(id, p);
      }
      const stored = await this.index.positions(db, ask);
      const next: string[] = [];
      for (const id of ask) {
        const p = stored.get(id);
        if (p) {
          out.set(id, p);
          authOfCandidates.set(id, p);
          continue;
        }
        const ev = batch(id);
        // Unknown here: what depends on it stays unplaced.
        if (!ev || typeof ev.pdu.state_key !== 'string') continue;
        const authIds = [...new Set(authEventIds(ev.pdu))];
        candidates.set(id, { eventId: id, key: `${ev.pdu.type}\u0000${ev.pdu.state_key}`, authIds });
        for (const a of authIds) if (!candidates.has(a) && !this.placed.has(a) && !stored.has(a)) next.push(a);
        for (const a of authIds) {
          const known = this.placed.get(a) ?? stored.get(a);
          if (known) authOfCandidates.set(a, known);
        }
      }
      frontier = [...new Set(next)];
    }
    const complete = (): Map<string, IndexedEvent> | null => (requested.every((id) => out.has(id)) ? out : null);
    if (candidates.size === 0) return complete();

    const chains = [...new Set([...authOfCandidates.values()].map((p) => p.chain))];
    const need = new Map<number, number>();
    for (const p of authOfCandidates.values()) if ((need.get(p.chain) ?? 0) < p.seq) need.set(p.chain, p.seq);
    // A chain's tail matters up to the chain's last event: links are needed up to there too.
    const storedTails = await this.index.tails(db, chains.filter((c) => !this.tails.has(c)));
    for (const [c, t] of storedTails) need.set(c, Math.max(need.get(c) ?? 0, t));
    const known = await this.links(db, need);
    const result = assignChains(authOrder([...candidates.values()]), {
      position: (id) => this.placed.get(id) ?? authOfCandidates.get(id),
      keyOf: (id) => (this.placed.get(id) ?? authOfCandidates.get(id))?.key,
      tail: (chain) => this.tails.get(chain) ?? storedTails.get(chain) ?? 0,
      links: known,
    }, () => -++this.tempChains);
    for (const [id, pos] of result.positions) {
      if (pos.chain >= 0 && !this.extended.has(pos.chain)) this.extended.set(pos.chain, pos.seq - 1);
      const p = { ...pos, key: candidates.get(id)!.key };
      this.placed.set(id, p);
      out.set(id, p);
      this.tails.set(pos.chain, pos.seq);
    }
    for (const l of result.links) {
      this.newLinks.push(l);
      let list = this.linksByChain.get(l.originChain);
      if (!list) this.linksByChain.set(l.originChain, (list = []));
      list.push(l);
    }
    return complete();
  }

  /** Links of the given chains up to a seq, stored and the batch's own. */
  async links(db: DbOrTx, need: ReadonlyMap<number, number>): Promise<Map<number, ChainLink[]>> {
    // The stored part of a chain this batch extended ends where the batch began.
    const storedNeed = new Map<number, number>();
    for (const [c, upTo] of need) if (c >= 0) storedNeed.set(c, Math.min(upTo, this.extended.get(c) ?? upTo));
    const stored = await this.index.links(db, storedNeed);
    const out = new Map<number, ChainLink[]>();
    for (const [chain, upTo] of need) {
      out.set(chain, [...(stored.get(chain) ?? []), ...(this.linksByChain.get(chain) ?? [])].filter((l) => l.originSeq <= upTo));
    }
    return out;
  }

  /** Ids of the events at the seqs of each range (lo exclusive, hi inclusive). */
  async eventsInRanges(db: DbOrTx, ranges: readonly SeqRange[]): Promise<string[]> {
    const stored = ranges
      .filter((r) => r.chain >= 0)
      .map((r) => ({ ...r, hi: Math.min(r.hi, this.extended.get(r.chain) ?? r.hi) }))
      .filter((r) => r.hi > r.lo);
    const out = await this.index.eventsInRanges(db, stored);
    for (const [id, p] of this.placed) {
      if (ranges.some((r) => r.chain === p.chain && p.seq > r.lo && p.seq <= r.hi)) out.push(id);
    }
    return out;
  }

  /**
   * Stores the batch's positions and links in its transaction, under the
   * room's lock. False, with nothing written, when another writer extended a
   * chain this batch extends since it was read: the caller plans again.
   */
  async write(trx: DbOrTx): Promise<boolean> {
    if (this.placed.size === 0) return true;
    if (this.extended.size > 0) {
      const now = await this.index.tails(trx, [...this.extended.keys()]);
      for (const [chain, tail] of this.extended) if ((now.get(chain) ?? 0) !== tail) return false;
    }
    const first = this.tempChains > 0 ? await nextPositions(trx, 'auth_chains', this.tempChains) : 0;
    const real = (chain: number): number => (chain >= 0 ? chain : first + (-chain - 1));
    this.stored = [...this.placed].map(([id, p]): [string, IndexedEvent] => [id, { ...p, chain: real(p.chain) }]);
    await insertChainIndex(
      trx,
      this.stored.map(([id, p]): [string, ChainPos] => [id, { chain: p.chain, seq: p.seq }]),
      this.newLinks.map((l) => ({ ...l, originChain: real(l.originChain), targetChain: real(l.targetChain) })),
    );
    return true;
  }

  /** The batch's transaction committed: its positions go to the index's cache. */
  committed(): void {
    this.index.remember(this.stored);
  }
}
