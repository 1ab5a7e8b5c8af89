/**
 * Which servers receive an event made here (sender.ts's module comment): those with a joined member
 * in the room at the event, by the state after it, not those in the room when the sender gets to
 * it. The sender sorts events some time after their commit, and a server that joined meanwhile
 * must not receive what was said before it joined; one that left meanwhile still receives what was
 * said while it was there.
 */
import { boundedCache } from '../../bounded-cache.js';
import { serverNameOf } from '../../core/ids.js';
import { splitStateKey, type Pdu } from '../../core/types.js';
import type { RoomsCore } from '../../rooms/room-core.js';
import { joinedServers, type MemberInfo, type RoomHead } from '../../rooms/state/room-head.js';

export class EventDestinations {
  private readonly serversByMembers = new WeakMap<ReadonlyMap<string, MemberInfo>, Set<string>>();
  /**
   * The servers an event of a state group goes to (with the partial state's servers while the
   * room's state was partial). Groups do not change, so a run of messages, which share the group
   * of the state before them, costs one lookup each and no room head read (in a cluster the head
   * of a room another node writes to is stale after each of its events, and reading it again
   * costs a snapshot of the room's state and members).
   */
  private readonly serversByGroup = boundedCache<number, Set<string>>(1_000);

  constructor(
    private readonly core: RoomsCore,
    private readonly serverName: string,
  ) {}

  /**
   * The servers that receive `pdu`, an event whose state after it is `group`; with no group (an
   * outlier), the servers in the room now. For a membership the server of its target too (a user
   * kicked or banned must hear of it), except for an invite, which travels by the invite endpoint.
   * Never this server. The set may be shared: callers only read it.
   */
  async at(roomId: string, group: number | null, pdu: Pdu | null): Promise<ReadonlySet<string>> {
    let servers = group === null ? undefined : this.serversByGroup.get(group);
    if (!servers) {
      const head = await this.core.heads.get(roomId);
      servers = new Set(await this.joinedServers(head, group));
      // With partial state the members held here are few: the servers the resident named stand in.
      for (const server of head?.partial?.servers ?? []) servers.add(server);
      servers.delete(this.serverName);
      if (group !== null) this.serversByGroup.set(group, servers);
    }
    const target = pdu !== null && pdu.type === 'm.room.member' && typeof pdu.state_key === 'string' && pdu.content?.membership !== 'invite' ? serverNameOf(pdu.state_key) : undefined;
    if (target === undefined || target === this.serverName || servers.has(target)) return servers;
    return new Set(servers).add(target);
  }

  /** The servers that receive an EDU about the room: those in it now; never this one. */
  now(roomId: string): Promise<ReadonlySet<string>> {
    return this.at(roomId, null, null);
  }

  /** A partial state was filled in: the groups of the events stored meanwhile are read anew. */
  forgetGroups(): void {
    this.serversByGroup.clear();
  }

  /** The servers with a joined member in `group`; the head's members when it is the head's state, or when no group is known. */
  private async joinedServers(head: RoomHead | null, group: number | null): Promise<Iterable<string>> {
    const current = head?.group ? ('id' in head.group ? head.group.id : head.group.plan.id) : undefined;
    if (head && (group === null || group === current)) return this.serversOfMembers(head.members);
    return group === null ? [] : this.serversOfGroup(group);
  }

  private serversOfMembers(members: ReadonlyMap<string, MemberInfo>): Set<string> {
    let servers = this.serversByMembers.get(members);
    if (!servers) {
      servers = joinedServers(members);
      this.serversByMembers.set(members, servers);
    }
    return servers;
  }

  /** The servers with a joined member in a state group that is not the room's current state. */
  private async serversOfGroup(group: number): Promise<Set<string>> {
    const state = await this.core.groups.load(group);
    const memberIds: string[] = [];
    for (const [key, eventId] of state) if (splitStateKey(key)[0] === 'm.room.member') memberIds.push(eventId);
    const servers = new Set<string>();
    for (const view of (await this.core.events.getViews(memberIds)).values()) {
      const server = typeof view.pdu.state_key === 'string' ? serverNameOf(view.pdu.state_key) : undefined;
      if (view.pdu.content.membership === 'join' && server !== undefined) servers.add(server);
    }
    return servers;
  }
}
