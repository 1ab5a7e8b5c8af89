/** JSON values as the protocol sees them. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject { [key: string]: JsonValue }

/**
 * A persistent data unit (room event) in its federation form. Fields that do
 * not exist in every room version are optional; `event_id` is only present on
 * the wire in room versions 1 and 2.
 */
export interface Pdu {
  event_id?: string;
  room_id: string;
  sender: string;
  type: string;
  state_key?: string;
  content: JsonObject;
  origin_server_ts: number;
  depth: number;
  /** v1/v2: [eventId, {sha256}] pairs; v3+: event ids. */
  prev_events: (string | [string, JsonObject])[];
  auth_events: (string | [string, JsonObject])[];
  hashes: { sha256: string };
  signatures: Record<string, Record<string, string>>;
  unsigned?: JsonObject;
  redacts?: string;
  origin?: string;
  membership?: string;
  prev_state?: unknown;
  [key: string]: unknown;
}

/** An event together with its id, as the pipeline and auth rules handle it. */
export interface EventWithId {
  eventId: string;
  pdu: Pdu;
}

/** Room state: (type, state_key) -> event id. Keys are `${type}\u0000${stateKey}`. */
export type StateMap = Map<string, string>;

export function stateKey(type: string, key: string): string {
  return `${type}\u0000${key}`;
}

export function splitStateKey(k: string): [string, string] {
  const i = k.indexOf('\u0000');
  return [k.slice(0, i), k.slice(i + 1)];
}

/** An event as the Client-Server API shows it. */
export interface ClientEvent {
  event_id: string;
  room_id?: string;
  sender: string;
  type: string;
  state_key?: string;
  content: JsonObject;
  origin_server_ts: number;
  unsigned?: JsonObject;
  redacts?: string;
}

/** Stripped state, as shown for invites and knocks. */
export interface StrippedStateEvent {
  type: string;
  state_key: string;
  sender: string;
  content: JsonObject;
}
