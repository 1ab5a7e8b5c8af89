import { serverNameOf } from '../core/ids.js';
import type { JsonObject } from '../core/types.js';
import type { CurrentStateDeltaRow } from '../rooms/tables.js';
import { searchText } from '../accounts/search-text.js';
import type { UserDirectoryRemoteRow } from './tables.js';

/** What one stretch of the current-state stream changes in the user directory's tables. */
export interface DirectoryChanges {
  /** Remote users now joined, with the profile of their member event (replacing any earlier one in that room). */
  remoteJoined: UserDirectoryRemoteRow[];
  /** Remote users no longer joined (left, kicked, banned, invited back, or removed by a state reset). */
  remoteGone: Array<{ room_id: string; user_id: string }>;
  localJoined: Array<{ room_id: string; user_id: string }>;
  localGone: Array<{ room_id: string; user_id: string }>;
  /** New values of the keys that make a room's members visible to all; null when the key was removed. */
  joinRules: Array<{ room_id: string; value: string | null }>;
  historyVisibility: Array<{ room_id: string; value: string | null }>;
  /** Profiles of member events redacted since they were written (redactedProfiles). */
  redacted: RedactedProfile[];
}

/** A member event's profile after its redaction: what a row holding that event now shows. */
export interface RedactedProfile {
  event_id: string;
  display_name: string | null;
  avatar_url: string | null;
  search_text: string;
}

/** State event types the directory reads the content of. */
export const SETTING_TYPES: ReadonlySet<string> = new Set(['m.room.join_rules', 'm.room.history_visibility']);

/**
 * Turns current-state changes, in stream order, into directory changes: only the last change at
 * each room's key counts, so a leave and a rejoin in one stretch leave the user joined with the
 * rejoin's profile. `contentOf` gives the content of the member and setting events the changes
 * name (an event it does not know counts as empty content).
 */
export function directoryChanges(
  deltas: readonly CurrentStateDeltaRow[],
  serverName: string,
  contentOf: (eventId: string) => JsonObject | undefined,
): Omit<DirectoryChanges, 'redacted'> {
  const last = new Map<string, CurrentStateDeltaRow>();
  for (const d of deltas) {
    if (d.type !== 'm.room.member' && !(SETTING_TYPES.has(d.type) && d.state_key === '')) continue;
    const key = `${d.room_id}\u0000${d.type}\u0000${d.state_key}`;
    // Re-inserted so the map's order stays the order of the last changes.
    last.delete(key);
    last.set(key, d);
  }
  const out: Omit<DirectoryChanges, 'redacted'> = { remoteJoined: [], remoteGone: [], localJoined: [], localGone: [], joinRules: [], historyVisibility: [] };
  for (const d of last.values()) {
    // A key that state resolution removed has no event: its content is gone with it.
    const content = d.event_id === '' ? undefined : contentOf(d.event_id);
    if (d.type === 'm.room.join_rules') {
      out.joinRules.push({ room_id: d.room_id, value: stringOrNull(content?.join_rule) });
      continue;
    }
    if (d.type === 'm.room.history_visibility') {
      out.historyVisibility.push({ room_id: d.room_id, value: stringOrNull(content?.history_visibility) });
      continue;
    }
    const member = { room_id: d.room_id, user_id: d.state_key };
    const joined = d.membership === 'join';
    if (serverNameOf(d.state_key) === serverName) {
      (joined ? out.localJoined : out.localGone).push(member);
      continue;
    }
    if (!joined) {
      out.remoteGone.push(member);
      continue;
    }
    const displayName = stringOrNull(content?.displayname);
    out.remoteJoined.push({
      ...member,
      event_id: d.event_id,
      display_name: displayName,
      avatar_url: stringOrNull(content?.avatar_url),
      search_text: searchText(d.state_key, displayName),
      stream_pos: d.stream_pos,
    });
  }
  return out;
}

/**
 * The profiles that remote member events show after a redaction, for the rows that hold them
 * (`holders`: event id to user id). `contentOf` gives the events' content as served, which a
 * redaction that was applied has pruned; one that was not (a redaction its sender had no power
 * for) leaves it as it was, and the row is rewritten unchanged.
 */
export function redactedProfiles(holders: ReadonlyMap<string, string>, contentOf: (eventId: string) => JsonObject | undefined): RedactedProfile[] {
  return [...holders].map(([eventId, userId]) => {
    const content = contentOf(eventId);
    const displayName = stringOrNull(content?.displayname);
    return { event_id: eventId, display_name: displayName, avatar_url: stringOrNull(content?.avatar_url), search_text: searchText(userId, displayName) };
  });
}

/** The event a redaction names: top-level `redacts` before room version 11, in the content from 11 on. */
export function redactionTarget(ev: { redacts?: unknown; content?: JsonObject }): string | undefined {
  const r = typeof ev.redacts === 'string' ? ev.redacts : ev.content?.redacts;
  return typeof r === 'string' ? r : undefined;
}

/** The event ids whose content `directoryChanges` reads. */
export function eventsToRead(deltas: readonly CurrentStateDeltaRow[], serverName: string): string[] {
  const ids = new Set<string>();
  for (const d of deltas) {
    if (d.event_id === '') continue;
    const remoteJoin = d.type === 'm.room.member' && d.membership === 'join' && serverNameOf(d.state_key) !== serverName;
    if (remoteJoin || (SETTING_TYPES.has(d.type) && d.state_key === '')) ids.add(d.event_id);
  }
  return [...ids];
}

function stringOrNull(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
