import type { ChainLink, ChainPos, SeqRange } from '../../core/auth-chain-cover.js';
import type { DbOrTx } from '../../db/schema.js';

/** Reads and writes of the auth chain cover index (core/auth-chain-cover.ts). */

const CHUNK = 500;

function chunks<T>(xs: readonly T[], n = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

export interface IndexedEvent extends ChainPos {
  /** `type\u0000state_key`. */
  key: string;
}

/** Positions (and state keys) of the indexed events among `ids`. */
export async function selectPositions(db: DbOrTx, ids: readonly string[]): Promise<Map<string, IndexedEvent>> {
  const out = new Map<string, IndexedEvent>();
  for (const part of chunks(ids)) {
    const rows = await db
      .selectFrom('auth_chain_positions as p')
      .innerJoin('events as e', 'e.event_id', 'p.event_id')
      .select(['p.event_id', 'p.chain_id', 'p.seq', 'e.type', 'e.state_key'])
      .where('p.event_id', 'in', part)
      .execute();
    for (const r of rows) out.set(r.event_id, { chain: Number(r.chain_id), seq: Number(r.seq), key: `${r.type}\u0000${r.state_key ?? ''}` });
  }
  return out;
}

/** Highest seq stored on each chain. */
export async function selectTails(db: DbOrTx, chains: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const part of chunks(chains)) {
    const rows = await db
      .selectFrom('auth_chain_positions')
      .select(['chain_id', (eb) => eb.fn.max('seq').as('tail')])
      .where('chain_id', 'in', part)
      .groupBy('chain_id')
      .execute();
    for (const r of rows) out.set(Number(r.chain_id), Number(r.tail));
  }
  return out;
}

/** Every link from the given chains. */
export async function selectLinks(db: DbOrTx, chains: readonly number[]): Promise<ChainLink[]> {
  const out: ChainLink[] = [];
  for (const part of chunks(chains)) {
    const rows = await db
      .selectFrom('auth_chain_links')
      .select(['origin_chain', 'origin_seq', 'target_chain', 'target_seq'])
      .where('origin_chain', 'in', part)
      .execute();
    for (const r of rows) {
      out.push({ originChain: Number(r.origin_chain), originSeq: Number(r.origin_seq), targetChain: Number(r.target_chain), targetSeq: Number(r.target_seq) });
    }
  }
  return out;
}

/** The events at the seqs of each range (lo exclusive, hi inclusive): one indexed read per chunk of chains. */
export async function selectInRanges(db: DbOrTx, ranges: readonly SeqRange[]): Promise<string[]> {
  const byChain = new Map<number, SeqRange[]>();
  for (const r of ranges) {
    let list = byChain.get(r.chain);
    if (!list) byChain.set(r.chain, (list = []));
    list.push(r);
  }
  const out: string[] = [];
  for (const part of chunks([...byChain.keys()])) {
    const lo = Math.min(...part.flatMap((c) => byChain.get(c)!.map((r) => r.lo)));
    const rows = await db
      .selectFrom('auth_chain_positions')
      .select(['event_id', 'chain_id', 'seq'])
      .where('chain_id', 'in', part)
      .where('seq', '>', lo)
      .execute();
    for (const r of rows) {
      const seq = Number(r.seq);
      if (byChain.get(Number(r.chain_id))!.some((x) => seq > x.lo && seq <= x.hi)) out.push(r.event_id);
    }
  }
  return out;
}

export async function insertChainIndex(db: DbOrTx, positions: ReadonlyArray<[string, ChainPos]>, links: readonly ChainLink[]): Promise<void> {
  for (const part of chunks(positions)) {
    await db.insertInto('auth_chain_positions').values(part.map(([id, p]) => ({ event_id: id, chain_id: p.chain, seq: p.seq }))).execute();
  }
  for (const part of chunks(links)) {
    await db
      .insertInto('auth_chain_links')
      .values(part.map((l) => ({ origin_chain: l.originChain, origin_seq: l.originSeq, target_chain: l.targetChain, target_seq: l.targetSeq })))
      .execute();
  }
}
