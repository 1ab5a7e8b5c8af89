/**
 * The user-level sections of /sync that follow from who shares rooms with
 * the user: `presence` (spec: "Presence") and `device_lists` (spec: E2E
 * "Extensions to /sync").
 */
import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import type { CompiledFilter } from './filter-rules.js';
import { orDefault } from './guard.js';
import type { Presence } from './presence.js';
import { limitList, type JoinPlan, type LeavePlan, type Run } from './sync-run.js';
import type { SyncToken } from './token.js';

/** Presence changes since the token of the users sharing a room with the user. */
export async function presenceSection(ctx: Context, presence: Presence, userId: string, since: SyncToken | null, heads: SyncToken, filter: CompiledFilter): Promise<JsonObject[]> {
  if (!presence.enabled) return [];
  const fromPos = since?.presence ?? 0;
  if (fromPos >= heads.presence) return [];
  const sharing = await ctx.services.rooms.getUsersSharingRooms(userId);
  const rows = await presence.changes([...sharing], fromPos, heads.presence);
  const events = rows
    .map((r) => ({ type: 'm.presence', sender: r.user_id, content: presence.content(r) }))
    .filter((e) => filter.presence.matches(e));
  return limitList(events, filter.presence.limit);
}

/**
 * `device_lists`: users whose devices changed among those sharing a room,
 * users who newly share a room, and users who no longer share any. Call
 * after the rooms are rendered (they fill `run.memberChanges`).
 */
export async function deviceLists(ctx: Context, run: Run, joinPlans: JoinPlan[], leaves: LeavePlan[]): Promise<{ changed: Set<string>; left: Set<string> }> {
  const rooms = ctx.services.rooms;
  const { p, since, heads } = run;
  const userId = p.userId;
  const changed = new Set<string>();
  const gone = new Set<string>();
  const newJoins = joinPlans.filter((j) => j.newlyJoined || j.stateFilled);
  const leftRooms = leaves.filter((l) => l.timelineFrom !== null);
  const needSharing = since!.device_lists < heads.device_lists || run.memberChanges.size > 0 || newJoins.length > 0 || leftRooms.length > 0;
  if (!needSharing) return { changed, left: gone };

  const sharing = await rooms.getUsersSharingRooms(userId);
  const [deviceChanges, joinedMembers, leftMembers] = await Promise.all([
    since!.device_lists < heads.device_lists
      ? orDefault(ctx.services.e2ee.getDeviceListChanges(since!.device_lists, heads.device_lists, sharing), new Set<string>())
      : Promise.resolve(new Set<string>()),
    Promise.all(newJoins.map((j) => rooms.getJoinedMembers(j.roomId))),
    Promise.all(leftRooms.map((l) => rooms.getJoinedMembers(l.roomId))),
  ]);
  for (const u of deviceChanges) changed.add(u);
  for (const list of joinedMembers) for (const u of list) changed.add(u);
  for (const list of leftMembers) for (const u of list) if (!sharing.has(u)) gone.add(u);
  for (const events of run.memberChanges.values()) {
    for (const e of events) {
      const target = e.state_key!;
      if (e.content.membership === 'join') {
        if (sharing.has(target)) changed.add(target);
      } else if (!sharing.has(target)) gone.add(target);
    }
  }
  for (const u of gone) changed.delete(u);
  gone.delete(userId);
  return { changed, left: gone };
}
