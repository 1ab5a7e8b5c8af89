import { authEventSelection } from '../../src/core/auth-rules.js';
import { finaliseEvent, type EventDraft } from '../../src/core/event-format.js';
import { getRoomVersion, type RoomVersion } from '../../src/core/room-versions.js';
import { generateSigningKey, type SigningKey } from '../../src/core/signing.js';
import { stateKey, type JsonObject, type Pdu, type StateMap } from '../../src/core/types.js';
import type { InboundBatch, InboundResult } from '../../src/rooms/inbound/receive.js';
import type { TestServer } from './server.js';

export interface RemoteEvent {
  eventId: string;
  pdu: Pdu;
}

export interface EventFields {
  sender: string;
  type: string;
  stateKey?: string;
  content: JsonObject;
  prev: string[];
  /** The room state the auth events are chosen from (type/state_key keys). */
  authFrom: StateMap;
  depth: number;
  ts?: number;
  redacts?: string;
}

/**
 * A second homeserver as far as the inbound event path can tell: its own
 * name and signing key, events built and signed here, handed to Hearth's
 * inbound path the way federation will hand them.
 */
export class FakeRemote {
  readonly key: SigningKey = generateSigningKey();
  private lastTs = 0;

  constructor(readonly serverName: string) {}

  /** Teaches the server this remote's signing key (what federation's key fetching will do). */
  trustedBy(server: TestServer): this {
    server.hs.ctx.services.rooms.core.keyRing.add(this.serverName, this.key.keyId, this.key.publicKey);
    return this;
  }

  user(localpart: string): string {
    return `@${localpart}:${this.serverName}`;
  }

  event(roomId: string, version: RoomVersion | string, f: EventFields): RemoteEvent {
    const v = typeof version === 'string' ? getRoomVersion(version)! : version;
    const draft: EventDraft = {
      room_id: roomId,
      sender: f.sender,
      type: f.type,
      content: f.content,
      origin_server_ts: f.ts ?? (this.lastTs = Math.max(Date.now(), this.lastTs + 1)),
      depth: f.depth,
      prev_events: f.prev,
      auth_events: [],
    };
    if (f.stateKey !== undefined) draft.state_key = f.stateKey;
    if (f.redacts !== undefined) draft.redacts = f.redacts;
    const auth: string[] = [];
    for (const [t, k] of authEventSelection(draft as Pdu, v)) {
      const id = f.authFrom.get(stateKey(t, k));
      if (id !== undefined) auth.push(id);
    }
    draft.auth_events = auth;
    const done = finaliseEvent(draft, v, this.serverName, this.key);
    return { eventId: done.eventId, pdu: done.pdu };
  }
}

/** The room's current state, forward extremities and deepest depth, read fresh from the database. */
export async function roomHead(server: TestServer, roomId: string) {
  const core = server.hs.ctx.services.rooms.core;
  core.heads.invalidate(roomId);
  const head = await core.heads.get(roomId);
  if (!head) throw new Error(`no room ${roomId}`);
  const depth = Math.max(...head.extremities.map((e) => e.depth));
  return { state: head.state, extremities: head.extremities.map((e) => e.eventId).sort(), depth, members: head.members };
}

export async function receive(server: TestServer, roomId: string, batch: InboundBatch, roomVersion?: string): Promise<InboundResult[]> {
  return server.hs.ctx.services.rooms.core.inbound.receive(roomId, batch, { roomVersion });
}

export function statusOf(results: InboundResult[], eventId: string): string | undefined {
  return results.find((r) => r.eventId === eventId)?.status;
}

export function withEntry(state: StateMap, type: string, sk: string, id: string): StateMap {
  const out = new Map(state);
  out.set(stateKey(type, sk), id);
  return out;
}
