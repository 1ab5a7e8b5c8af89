import { createHash } from 'node:crypto';
import type { RequiredState } from './request.js';

/**
 * What a connection has sent, stored with each position (MSC4186: a room
 * is sent when it was never sent on the connection, or has news since it
 * last was). Bounded: a connection remembers at most MAX_ROOMS rooms and
 * MAX_MEMBERS lazily sent members per room; a room it forgot is simply sent
 * again in full (`initial`), which the MSC allows.
 */

export interface SentRoom {
  /** Events position up to which the room was sent. */
  pos: number;
  /** The timeline limit it was last sent with. */
  limit: number;
  /** Signature of the required_state it was last sent with. */
  cfg: string;
  /** Members whose m.room.member event was sent through lazy loading. */
  members: string[];
  /** Whether it was last sent as a DM. */
  dm: boolean;
}

export interface ConnectionState {
  /** The sync token (stream heads) the response covered. */
  heads: string;
  rooms: Record<string, SentRoom>;
  /** List counts last sent: a change is news. */
  counts: Record<string, number>;
  /** Thread subscription changes sent up to this position (MSC4308); absent before the extension was used. */
  threadSubs?: number;
  /** The threads extension (MSC4360) was on for a response of the connection: it sends what changed since; before, everything. */
  threads?: true;
}

const MAX_ROOMS = 5000;
const MAX_MEMBERS = 500;

export function encodeState(s: ConnectionState): string {
  let rooms = s.rooms;
  const ids = Object.keys(rooms);
  if (ids.length > MAX_ROOMS) {
    // The rooms sent longest ago are forgotten first.
    const keep = ids.sort((a, b) => rooms[b]!.pos - rooms[a]!.pos).slice(0, MAX_ROOMS);
    rooms = Object.fromEntries(keep.map((id) => [id, s.rooms[id]!]));
  }
  for (const r of Object.values(rooms)) if (r.members.length > MAX_MEMBERS) r.members = r.members.slice(-MAX_MEMBERS);
  return JSON.stringify({ ...s, rooms });
}

export function decodeState(text: string): ConnectionState {
  const v = JSON.parse(text) as ConnectionState;
  return {
    heads: v.heads,
    rooms: v.rooms ?? {},
    counts: v.counts ?? {},
    ...(v.threadSubs !== undefined ? { threadSubs: v.threadSubs } : {}),
    ...(v.threads === true ? { threads: true as const } : {}),
  };
}

/** A stable signature of the combined required_state of a room, to notice when a client widens it. */
export function configSignature(configs: RequiredState[]): string {
  const parts = configs
    .map((c) =>
      JSON.stringify([
        c.include.map((m) => [m.type, m.stateKey]).sort(),
        c.exclude.map((m) => [m.type, m.stateKey]).sort(),
        c.lazyMembers,
      ]),
    )
    .sort();
  return createHash('sha256').update(parts.join('\n')).digest('base64url').slice(0, 16);
}
