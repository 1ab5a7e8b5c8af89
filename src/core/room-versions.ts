/**
 * Room versions 1-12 as data. Every difference between versions that the
 * rest of the core needs is a flag here, so a version's behaviour is read in
 * one place (spec: rooms/v1.md .. rooms/v12.md).
 */

export type EventIdFormat = 'v1' | 'v3' | 'v4';
export type StateResAlgorithm = 'v1' | 'v2' | 'v2.1';
export type RedactionAlgorithm = 'v1' | 'v11';

export interface RoomVersion {
  id: string;
  /** v1/v2: event ids are `$random:server`; v3: base64 reference hash; v4+: url-safe base64. */
  eventIdFormat: EventIdFormat;
  stateRes: StateResAlgorithm;
  /** v5+: signing keys' valid_until_ts is enforced. */
  enforceKeyValidity: boolean;
  /** v6+: integers in canonical JSON must be in range; notifications key power; no aliases special-case. */
  strictCanonicalJson: boolean;
  /** v6+: m.room.aliases events have no special auth rule. */
  specialCaseAliasesAuth: boolean;
  /** v6+: changes to the power levels `notifications` keys are checked by the auth rules. */
  limitNotificationsPowerLevels: boolean;
  /** v7+: knock membership. */
  knockingSupported: boolean;
  /** v8+: join_rule `restricted` and join_authorised_via_users_server. */
  restrictedJoinRuleSupported: boolean;
  /** v10+: join_rule `knock_restricted`. */
  knockRestrictedJoinRuleSupported: boolean;
  /** v10+: power level values must be integers (not strings). */
  integerPowerLevels: boolean;
  /** v11+: redaction algorithm changes and `creator` removed from m.room.create content. */
  redaction: RedactionAlgorithm;
  /** v11+: the sender of m.room.create is the creator (no `creator` field). */
  implicitRoomCreator: boolean;
  /** v12+: room id is the create event's reference hash; creators have infinite power. */
  roomIdIsCreateEventHash: boolean;
  /** v12+: additional_creators in m.room.create content; creators are privileged. */
  privilegedCreators: boolean;
  stable: boolean;
}

const base: RoomVersion = {
  id: '1',
  eventIdFormat: 'v1',
  stateRes: 'v1',
  enforceKeyValidity: false,
  strictCanonicalJson: false,
  specialCaseAliasesAuth: true,
  limitNotificationsPowerLevels: false,
  knockingSupported: false,
  restrictedJoinRuleSupported: false,
  knockRestrictedJoinRuleSupported: false,
  integerPowerLevels: false,
  redaction: 'v1',
  implicitRoomCreator: false,
  roomIdIsCreateEventHash: false,
  privilegedCreators: false,
  stable: true,
};

function derive(prev: RoomVersion, id: string, changes: Partial<RoomVersion>): RoomVersion {
  return { ...prev, ...changes, id };
}

const v1 = base;
const v2 = derive(v1, '2', { stateRes: 'v2' });
const v3 = derive(v2, '3', { eventIdFormat: 'v3' });
const v4 = derive(v3, '4', { eventIdFormat: 'v4' });
const v5 = derive(v4, '5', { enforceKeyValidity: true });
const v6 = derive(v5, '6', {
  strictCanonicalJson: true,
  specialCaseAliasesAuth: false,
  limitNotificationsPowerLevels: true,
});
const v7 = derive(v6, '7', { knockingSupported: true });
const v8 = derive(v7, '8', { restrictedJoinRuleSupported: true });
const v9 = derive(v8, '9', {});
const v10 = derive(v9, '10', { knockRestrictedJoinRuleSupported: true, integerPowerLevels: true });
const v11 = derive(v10, '11', { redaction: 'v11', implicitRoomCreator: true });
const v12 = derive(v11, '12', {
  stateRes: 'v2.1',
  roomIdIsCreateEventHash: true,
  privilegedCreators: true,
});

export const ROOM_VERSIONS: Readonly<Record<string, RoomVersion>> = Object.freeze({
  '1': v1, '2': v2, '3': v3, '4': v4, '5': v5, '6': v6,
  '7': v7, '8': v8, '9': v9, '10': v10, '11': v11, '12': v12,
});

/** The spec's recommended default room version (v1.19). */
export const DEFAULT_ROOM_VERSION = '12';

export function getRoomVersion(id: string): RoomVersion | undefined {
  return Object.prototype.hasOwnProperty.call(ROOM_VERSIONS, id) ? ROOM_VERSIONS[id] : undefined;
}
