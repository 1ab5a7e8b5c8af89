/**
 * The redaction algorithm of every room version (spec: rooms/v1..v12,
 * "Redactions"). Signatures and reference hashes cover the redacted form, so
 * this must match other servers key for key.
 *
 *   v1-v5   base rules, m.room.aliases keeps `aliases`
 *   v6-v7   m.room.aliases loses its special case
 *   v8      m.room.join_rules keeps `allow`
 *   v9-v10  m.room.member keeps `join_authorised_via_users_server`
 *   v11+    top-level `origin`, `membership`, `prev_state` dropped; create keeps
 *           all content; power levels keep `invite`; redaction keeps `redacts`;
 *           member keeps `third_party_invite.signed`
 */

import type { RoomVersion } from './room-versions.js';
import type { JsonObject, JsonValue, Pdu } from './types.js';

/** An event as served to clients; only the fields redaction looks at are named. */
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
  [key: string]: unknown;
}

interface RedactionRules {
  topLevel: readonly string[];
  /** Content keys kept per event type; 'all' keeps the whole content. */
  content: ReadonlyMap<string, readonly string[] | 'all'>;
  keepThirdPartyInviteSigned: boolean;
}

const TOP_LEVEL_V11 = [
  'event_id', 'type', 'room_id', 'sender', 'state_key', 'content', 'hashes',
  'signatures', 'depth', 'prev_events', 'auth_events', 'origin_server_ts',
] as const;
const TOP_LEVEL_V1 = [...TOP_LEVEL_V11, 'prev_state', 'origin', 'membership'] as const;

const POWER_LEVEL_KEYS_V1 = [
  'ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default',
];

const rulesCache = new WeakMap<RoomVersion, RedactionRules>();

function rulesFor(version: RoomVersion): RedactionRules {
  let rules = rulesCache.get(version);
  if (rules === undefined) {
    rules = buildRules(version);
    rulesCache.set(version, rules);
  }
  return rules;
}

/**
 * room-versions.ts has no flag for the v9 member rule: v9 differs from v8
 * only in redaction, so it is "restricted joins exist, and not v8".
 */
function keepsJoinAuthorisedVia(version: RoomVersion): boolean {
  return version.redaction === 'v11' || (version.restrictedJoinRuleSupported && version.id !== '8');
}

function buildRules(version: RoomVersion): RedactionRules {
  const v11 = version.redaction === 'v11';
  const content = new Map<string, readonly string[] | 'all'>();
  content.set(
    'm.room.member',
    keepsJoinAuthorisedVia(version) ? ['membership', 'join_authorised_via_users_server'] : ['membership'],
  );
  content.set('m.room.create', v11 ? 'all' : ['creator']);
  content.set(
    'm.room.join_rules',
    version.restrictedJoinRuleSupported ? ['join_rule', 'allow'] : ['join_rule'],
  );
  content.set('m.room.power_levels', v11 ? [...POWER_LEVEL_KEYS_V1, 'invite'].sort() : POWER_LEVEL_KEYS_V1);
  content.set('m.room.history_visibility', ['history_visibility']);
  // v1-v5 are exactly the versions where m.room.aliases still has meaning.
  if (version.specialCaseAliasesAuth) content.set('m.room.aliases', ['aliases']);
  if (v11) content.set('m.room.redaction', ['redacts']);
  return { topLevel: v11 ? TOP_LEVEL_V11 : TOP_LEVEL_V1, content, keepThirdPartyInviteSigned: v11 };
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pruneContent(type: unknown, content: unknown, rules: RedactionRules): JsonObject {
  if (!isObject(content) || typeof type !== 'string') return {};
  const kept = rules.content.get(type);
  if (kept === undefined) return {};
  if (kept === 'all') return content;
  const out: JsonObject = {};
  for (const key of kept) {
    const v = content[key];
    if (v !== undefined && Object.hasOwn(content, key)) out[key] = v;
  }
  if (rules.keepThirdPartyInviteSigned && type === 'm.room.member') {
    const tpi = content['third_party_invite'];
    if (isObject(tpi) && Object.hasOwn(tpi, 'signed') && tpi['signed'] !== undefined) {
      out['third_party_invite'] = { signed: tpi['signed'] as JsonValue };
    }
  }
  return out;
}

/**
 * The redacted form without copying what redaction keeps: nested values
 * (prev_events, hashes, kept content values, ...) are shared with `pdu`.
 * For hashing and signing, where the result is encoded and dropped; use
 * redactPdu for anything that is stored or mutated.
 */
export function redactedView(pdu: Pdu, version: RoomVersion): Pdu {
  const rules = rulesFor(version);
  const src = pdu as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of rules.topLevel) {
    const v = src[key];
    if (v !== undefined) out[key] = v;
  }
  // Every event has content; a redacted one still carries an (empty) object.
  out['content'] = pruneContent(pdu.type, pdu.content, rules);
  return out as Pdu;
}

/** The redacted copy of a federation event; shares nothing with the input. */
export function redactPdu(pdu: Pdu, version: RoomVersion): Pdu {
  return structuredClone(redactedView(pdu, version));
}

const CLIENT_TOP_LEVEL = [
  'event_id', 'room_id', 'sender', 'type', 'state_key', 'origin_server_ts', 'unsigned',
] as const;

/**
 * The redacted copy of a client-facing event: content pruned by the same
 * rules, the envelope and `unsigned` kept. From v11 a redaction's `redacts`
 * survives in content, so the top-level copy that servers add for older
 * clients survives too.
 */
export function redactClientEvent<T extends ClientEvent>(event: T, version: RoomVersion): T {
  const rules = rulesFor(version);
  const src = event as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of CLIENT_TOP_LEVEL) {
    const v = src[key];
    if (v !== undefined) out[key] = v;
  }
  const content = pruneContent(event.type, event.content, rules);
  out['content'] = content;
  if (version.redaction === 'v11' && event.type === 'm.room.redaction') {
    const redacts = content['redacts'];
    if (typeof redacts === 'string') out['redacts'] = redacts;
  }
  return structuredClone(out) as T;
}
