/**
 * The states a batch of received events is planned on: the state after an event stored
 * before (its state group) or planned earlier in the batch (`pending`), and the state before an
 * event, the resolution of the states after its prev events when they differ (state
 * resolution reads the batch's events as well as stored ones).
 */
import type { RoomVersion } from '../../core/room-versions.js';
import type { StateMap } from '../../core/types.js';
import type { Db } from '../../db/schema.js';
import type { EventStore } from '../events/event-store.js';
import type { StoredEvent } from '../events/stored-event.js';
import type { ChainOverlay } from '../state/auth-chain-index.js';
import type { GroupRef } from '../state/room-head.js';
import type { StateGroups } from '../state/state-groups.js';
import { selectGroupDepth } from '../store/state-groups-table.js';
import { MissingEventsError, resolveStates } from './resolve-states.js';

export interface Pending {
  stored: StoredEvent;
  /** State after the event (before it, when rejected); null for outliers. */
  stateAfter: StateMap | null;
  groupAfter: GroupRef | null;
  depthAfter: number;
}

export class BatchStates {
  /** The batch's events planned so far, by id. */
  readonly pending = new Map<string, Pending>();

  constructor(
    private readonly db: Db,
    private readonly events: EventStore,
    private readonly groups: StateGroups,
    private readonly version: RoomVersion,
    readonly chains: ChainOverlay,
  ) {}

  /** Events of the batch or stored, by id (those unknown left out). */
  async load(ids: Iterable<string>): Promise<Map<string, StoredEvent>> {
    const out = new Map<string, StoredEvent>();
    const rest: string[] = [];
    for (const id of ids) {
      const p = this.pending.get(id);
      if (p) out.set(id, p.stored);
      else rest.push(id);
    }
    if (rest.length > 0) for (const [id, ev] of await this.events.getMany(rest)) out.set(id, ev);
    return out;
  }


  /** The state after one event (its stored group, or what this batch computed). */
  async stateAfter(id: string): Promise<{ state: StateMap; ref: GroupRef | null; depth: number }> {
    const p = this.pending.get(id);
    if (p) return { state: p.stateAfter ?? new Map(), ref: p.groupAfter, depth: p.depthAfter };
    const ev = (await this.events.getMany([id])).get(id);
    if (!ev || ev.stateGroup === null) throw new MissingEventsError([id]);
    return { state: await this.groups.load(ev.stateGroup), ref: { id: ev.stateGroup }, depth: -1 };
  }

  /**
   * The state before an event with these (stored) prev events: the state
   * after each, resolved when they differ; `group` is set when they share one.
   */
  async stateBefore(prevIds: string[]): Promise<{ state: StateMap; group: number | null }> {
    const s = await this.stateAfterAll(prevIds);
    return { state: s.state, group: s.ref !== null && 'id' in s.ref ? s.ref.id : null };
  }

  /** The resolved state after several events; their group when they all share one. */
  async stateAfterAll(ids: string[]): Promise<{ state: StateMap; ref: GroupRef | null; depth: number }> {
    const states = await Promise.all(ids.map((id) => this.stateAfter(id)));
    if (states.length === 0) return { state: new Map(), ref: null, depth: 0 };
    const first = states[0]!;
    const same = states.every((s) => s.ref !== null && first.ref !== null && sameGroup(s.ref, first.ref));
    if (same) return { ...first, ref: first.ref, depth: first.depth < 0 ? await this.depthOf(first.ref!) : first.depth };
    return { state: await this.resolve(states.map((s) => s.state)), ref: null, depth: 0 };
  }

  private async depthOf(ref: GroupRef): Promise<number> {
    if ('plan' in ref) return ref.plan.deltaDepth;
    // Unknown depth: a new snapshot keeps chains bounded.
    return (await selectGroupDepth(this.db, ref.id)) ?? Number.MAX_SAFE_INTEGER;
  }

  /** A parent to write a resolved state as a delta on: the first prev event's group. */
  async parentFor(prevIds: string[]): Promise<{ ref: GroupRef; depth: number; state: StateMap } | null> {
    const id = prevIds[0];
    if (id === undefined) return null;
    const s = await this.stateAfter(id);
    if (s.ref === null) return null;
    const depth = s.depth < 0 ? await this.depthOf(s.ref) : s.depth;
    return { ref: s.ref, depth, state: s.state };
  }

  /** State resolution over `sets`; fails with MissingEventsError rather than leaving an event out. */
  resolve(sets: StateMap[]): Promise<StateMap> {
    return resolveStates(this.version, sets, (ids) => this.load(ids), {
      db: this.db,
      chains: this.chains,
      batch: (id) => this.pending.get(id)?.stored,
    });
  }
}

function sameGroup(a: GroupRef, b: GroupRef): boolean {
  if ('id' in a && 'id' in b) return a.id === b.id;
  if ('plan' in a && 'plan' in b) return a.plan === b.plan;
  return false;
}
