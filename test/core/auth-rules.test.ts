import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { EventWithId, JsonObject, Pdu } from '../../src/core/types.js';
import { stateKey } from '../../src/core/types.js';
import { ROOM_VERSIONS, type RoomVersion } from '../../src/core/room-versions.js';
import {
  authEventSelection,
  authStateFromEvents,
  checkAuth,
  checkAuthAgainstAuthEvents,
  checkAuthEventList,
  redactsOf,
  shouldApplyRedaction,
  type AuthOptions,
  type AuthResult,
} from '../../src/core/auth-rules.js';
import { parsePowerLevels, roomCreators } from '../../src/core/power-levels.js';
import { generateSigningKey, publicKeyBase64, signJson } from '../../src/core/signing.js';
import { encodeUnpaddedBase64Url, decodeBase64 } from '../../src/core/base64.js';

const ALICE = '@alice:a.test';
const BOB = '@bob:b.test';
const CAROL = '@carol:c.test';
const DAVE = '@dave:d.test';

const v = (id: string): RoomVersion => ROOM_VERSIONS[id]!;

let counter = 0;

interface EvInit {
  id?: string;
  type: string;
  sender: string;
  state_key?: string;
  content?: JsonObject;
  prev?: string[];
  redacts?: string;
  signatures?: Record<string, Record<string, string>>;
}

/**
 * A tiny room whose state is a plain map, so each test states exactly the
 * state the rule is evaluated against. Event ids are set directly.
 */
class Room {
  readonly state = new Map<string, EventWithId>();
  readonly create: EventWithId;
  readonly roomId: string;
  private last: string;

  constructor(readonly version: RoomVersion, opts: { createContent?: JsonObject; creator?: string } = {}) {
    const creator = opts.creator ?? ALICE;
    const createId = this.newId('create');
    this.roomId = version.roomIdIsCreateEventHash ? `!${createId.slice(1)}` : '!room:a.test';
    const content: JsonObject = { room_version: version.id, ...(opts.createContent ?? {}) };
    if (!version.implicitRoomCreator && !('creator' in content)) content.creator = creator;
    const pdu = this.pdu({ type: 'm.room.create', sender: creator, state_key: '', content, prev: [] });
    if (version.roomIdIsCreateEventHash) delete (pdu as Partial<Pdu>).room_id;
    this.create = { eventId: createId, pdu };
    this.state.set(stateKey('m.room.create', ''), this.create);
    this.last = createId;
  }

  newId(label: string): string {
    counter += 1;
    return `$${label}${counter}:a.test`;
  }

  pdu(init: EvInit): Pdu {
    const pdu: Pdu = {
      room_id: this.roomId,
      sender: init.sender,
      type: init.type,
      content: init.content ?? {},
      origin_server_ts: counter,
      depth: counter,
      prev_events: init.prev ?? (this.last ? [this.last] : []),
      auth_events: [],
      hashes: { sha256: 'x' },
      signatures: init.signatures ?? { [init.sender.split(':')[1]!]: { 'ed25519:1': 'sig' } },
    };
    if (init.state_key !== undefined) pdu.state_key = init.state_key;
    if (init.redacts !== undefined) pdu.redacts = init.redacts;
    return pdu;
  }

  event(init: EvInit): EventWithId {
    const eventId = init.id ?? this.newId(init.type.replace(/^m\.room\./, ''));
    const pdu = this.pdu(init);
    pdu.auth_events = authEventSelection(pdu, this.version)
      .map(([t, k]) => this.state.get(stateKey(t, k))?.eventId)
      .filter((x): x is string => x !== undefined);
    return { eventId, pdu };
  }

  check(init: EvInit, opts?: AuthOptions): AuthResult {
    return checkAuth(this.event(init), (t, k) => this.state.get(stateKey(t, k)), this.version, this.create, opts);
  }

  /** Adds the event to the state without checking it, like a test fixture. */
  put(init: EvInit): EventWithId {
    const ev = this.event(init);
    this.state.set(stateKey(ev.pdu.type, ev.pdu.state_key ?? ''), ev);
    this.last = ev.eventId;
    return ev;
  }

  /** Adds the event only if allowed; fails the test otherwise. */
  apply(init: EvInit): EventWithId {
    const ev = this.event(init);
    const r = checkAuth(ev, (t, k) => this.state.get(stateKey(t, k)), this.version, this.create);
    assert.deepEqual(r, { allowed: true }, `expected ${init.type} from ${init.sender} to be allowed`);
    this.state.set(stateKey(ev.pdu.type, ev.pdu.state_key ?? ''), ev);
    this.last = ev.eventId;
    return ev;
  }

  member(user: string, membership: string, sender = user, extra: JsonObject = {}): AuthResult {
    return this.check({ type: 'm.room.member', sender, state_key: user, content: { membership, ...extra } });
  }

  setMember(user: string, membership: string, sender = user, extra: JsonObject = {}): EventWithId {
    return this.put({ type: 'm.room.member', sender, state_key: user, content: { membership, ...extra } });
  }

  /** create, creator join, power levels, join rules. */
  static standard(version: RoomVersion, joinRule = 'public', users: JsonObject = {}, plExtra: JsonObject = {}): Room {
    const r = new Room(version);
    r.apply({ type: 'm.room.member', sender: ALICE, state_key: ALICE, content: { membership: 'join' } });
    const u: JsonObject = version.privilegedCreators ? { ...users } : { [ALICE]: 100, ...users };
    r.apply({ type: 'm.room.power_levels', sender: ALICE, state_key: '', content: { users: u, ...plExtra } });
    r.apply({ type: 'm.room.join_rules', sender: ALICE, state_key: '', content: { join_rule: joinRule } });
    return r;
  }
}

const allowed = (r: AuthResult): boolean => r.allowed;

describe('create event rules', () => {
  test('create with prev_events is rejected', () => {
    const r = new Room(v('10'));
    const res = checkAuth({ eventId: '$c2:a.test', pdu: { ...r.create.pdu, prev_events: ['$x:a.test'] } },
      () => undefined, v('10'), undefined);
    assert.equal(res.allowed, false);
    assert.equal(allowed(checkAuth(r.create, () => undefined, v('10'), undefined)), true);
  });

  test('room_id domain must match the sender domain (v1-v11)', () => {
    const r = new Room(v('6'));
    const bad = { ...r.create.pdu, room_id: '!room:elsewhere.test' };
    assert.equal(allowed(checkAuth({ eventId: '$c:a.test', pdu: bad }, () => undefined, v('6'), undefined)), false);
  });

  test('unrecognised room_version is rejected', () => {
    const r = new Room(v('9'), { createContent: { room_version: '999' } });
    assert.equal(allowed(checkAuth(r.create, () => undefined, v('9'), undefined)), false);
  });

  test('create without creator is rejected before v11 and allowed from v11 (implicit creator)', () => {
    const r10 = new Room(v('10'));
    const noCreator10 = { ...r10.create.pdu, content: { room_version: '10' } };
    assert.equal(allowed(checkAuth({ eventId: '$c:a.test', pdu: noCreator10 }, () => undefined, v('10'), undefined)), false);
    const r11 = new Room(v('11'));
    assert.equal('creator' in r11.create.pdu.content, false);
    assert.equal(allowed(checkAuth(r11.create, () => undefined, v('11'), undefined)), true);
  });

  test('v12 create must not carry a room_id', () => {
    const r = new Room(v('12'));
    assert.equal(allowed(checkAuth(r.create, () => undefined, v('12'), undefined)), true);
    const withRoom = { ...r.create.pdu, room_id: '!x' };
    assert.equal(allowed(checkAuth({ eventId: r.create.eventId, pdu: withRoom }, () => undefined, v('12'), undefined)), false);
  });

  test('v12 additional_creators must be an array of user IDs', () => {
    const ok = new Room(v('12'), { createContent: { additional_creators: [BOB] } });
    assert.equal(allowed(checkAuth(ok.create, () => undefined, v('12'), undefined)), true);
    for (const bad of ['@bob:b.test', [42], ['not-a-user'], ['@bob']]) {
      const r = new Room(v('12'), { createContent: { additional_creators: bad as JsonObject[keyof JsonObject] } });
      assert.equal(allowed(checkAuth(r.create, () => undefined, v('12'), undefined)), false, JSON.stringify(bad));
    }
  });

  test('v12 events must be in the room named by the create event hash', () => {
    const r = Room.standard(v('12'));
    assert.ok(r.roomId.startsWith('!') && r.roomId.slice(1) === r.create.eventId.slice(1));
    const ev = r.event({ type: 'm.room.message', sender: ALICE, content: {} });
    ev.pdu.room_id = '!someotherroom';
    assert.equal(allowed(checkAuth(ev, (t, k) => r.state.get(stateKey(t, k)), v('12'), r.create)), false);
  });
});

describe('membership: join', () => {
  test('only the creator can join first', () => {
    for (const ver of ['1', '6', '10', '11', '12']) {
      const r = new Room(v(ver));
      assert.equal(allowed(r.member(BOB, 'join')), false, `v${ver} bob`);
      assert.equal(allowed(r.member(ALICE, 'join')), true, `v${ver} alice`);
    }
  });

  test('joins to invite-only rooms are rejected unless invited', () => {
    const r = Room.standard(v('10'), 'invite');
    assert.equal(allowed(r.member(BOB, 'join')), false);
    r.apply({ type: 'm.room.member', sender: ALICE, state_key: BOB, content: { membership: 'invite' } });
    assert.equal(allowed(r.member(BOB, 'join')), true);
  });

  test('a room without join rules only admits invited users', () => {
    const r = new Room(v('10'));
    r.apply({ type: 'm.room.member', sender: ALICE, state_key: ALICE, content: { membership: 'join' } });
    assert.equal(allowed(r.member(BOB, 'join')), false);
    r.setMember(BOB, 'invite', ALICE);
    assert.equal(allowed(r.member(BOB, 'join')), true);
  });

  test('public rooms admit anyone; cannot join on behalf of someone else', () => {
    const r = Room.standard(v('6'));
    assert.equal(allowed(r.member(BOB, 'join')), true);
    assert.equal(allowed(r.member(BOB, 'join', CAROL)), false);
  });

  test('a ban prevents join', () => {
    const r = Room.standard(v('10'));
    r.apply({ type: 'm.room.member', sender: ALICE, state_key: BOB, content: { membership: 'ban' } });
    assert.equal(allowed(r.member(BOB, 'join')), false);
  });

  test('private join rule rejects joins', () => {
    const r = Room.standard(v('10'), 'private');
    assert.equal(allowed(r.member(BOB, 'join')), false);
  });

  test('knock join rule admits invitees only from v7', () => {
    const r7 = Room.standard(v('7'), 'knock');
    r7.setMember(BOB, 'invite', ALICE);
    assert.equal(allowed(r7.member(BOB, 'join')), true);
    const r6 = Room.standard(v('6'), 'knock');
    r6.setMember(BOB, 'invite', ALICE);
    assert.equal(allowed(r6.member(BOB, 'join')), false);
  });
});

describe('restricted joins', () => {
  const via = (user: string): JsonObject => ({ join_authorised_via_users_server: user });
  const signedByBoth = (user: string, authoriser: string): Record<string, Record<string, string>> => ({
    [user.split(':')[1]!]: { 'ed25519:1': 's' },
    [authoriser.split(':')[1]!]: { 'ed25519:1': 's' },
  });

  test('restricted join requires join_authorised_via_users_server with an invite-capable joined user in v8+', () => {
    const r = Room.standard(v('8'), 'restricted', { [CAROL]: 0 }, { invite: 0 });
    r.setMember(CAROL, 'join');
    const join = (content: JsonObject, sigs?: Record<string, Record<string, string>>): AuthResult =>
      r.check({ type: 'm.room.member', sender: BOB, state_key: BOB, content: { membership: 'join', ...content }, signatures: sigs });
    assert.equal(allowed(join({})), false, 'no authoriser');
    assert.equal(allowed(join(via(CAROL), signedByBoth(BOB, CAROL))), true, 'joined authoriser at invite level');
    assert.equal(allowed(join(via(CAROL))), false, 'not signed by the authorising server');
    assert.equal(allowed(join(via(DAVE), signedByBoth(BOB, DAVE))), false, 'authoriser not joined');
  });

  test('the authorising user must reach the invite level', () => {
    const r = Room.standard(v('9'), 'restricted', { [CAROL]: 10 }, { invite: 50 });
    r.setMember(CAROL, 'join');
    const res = r.check({
      type: 'm.room.member', sender: BOB, state_key: BOB,
      content: { membership: 'join', ...via(CAROL) }, signatures: signedByBoth(BOB, CAROL),
    });
    assert.equal(allowed(res), false);
  });

  test('invited users join restricted rooms without an authoriser', () => {
    const r = Room.standard(v('8'), 'restricted');
    r.setMember(BOB, 'invite', ALICE);
    assert.equal(allowed(r.member(BOB, 'join')), true);
  });

  test('the signature hook decides the authorising server signature', () => {
    const r = Room.standard(v('10'), 'knock_restricted');
    const res = (ok: boolean): AuthResult => r.check({
      type: 'm.room.member', sender: BOB, state_key: BOB,
      content: { membership: 'join', ...via(ALICE) }, signatures: signedByBoth(BOB, ALICE),
    }, { isSignedBy: () => ok });
    assert.equal(allowed(res(true)), true);
    assert.equal(allowed(res(false)), false);
  });

  test('restricted is unknown before v8 and knock_restricted before v10', () => {
    const r7 = Room.standard(v('7'), 'restricted');
    r7.setMember(CAROL, 'join');
    assert.equal(allowed(r7.member(BOB, 'join', BOB, via(ALICE))), false);
    const r9 = Room.standard(v('9'), 'knock_restricted');
    assert.equal(allowed(r9.check({
      type: 'm.room.member', sender: BOB, state_key: BOB,
      content: { membership: 'join', ...via(ALICE) }, signatures: signedByBoth(BOB, ALICE),
    })), false);
  });
});

describe('membership: knock', () => {
  test('knock allowed only with join_rule knock in v7+', () => {
    assert.equal(allowed(Room.standard(v('6'), 'knock').member(BOB, 'knock')), false, 'v6 has no knocking');
    assert.equal(allowed(Room.standard(v('7'), 'knock').member(BOB, 'knock')), true);
    assert.equal(allowed(Room.standard(v('7'), 'public').member(BOB, 'knock')), false);
    assert.equal(allowed(Room.standard(v('7'), 'invite').member(BOB, 'knock')), false);
    assert.equal(allowed(Room.standard(v('9'), 'knock_restricted').member(BOB, 'knock')), false);
    assert.equal(allowed(Room.standard(v('10'), 'knock_restricted').member(BOB, 'knock')), true);
  });

  test('cannot knock for someone else, nor when banned, invited or joined', () => {
    const r = Room.standard(v('10'), 'knock');
    assert.equal(allowed(r.member(BOB, 'knock', CAROL)), false);
    r.setMember(BOB, 'ban', ALICE);
    assert.equal(allowed(r.member(BOB, 'knock')), false);
    r.setMember(CAROL, 'invite', ALICE);
    assert.equal(allowed(r.member(CAROL, 'knock')), false);
  });

  test('a knock can be rescinded by leaving (v7+)', () => {
    const r = Room.standard(v('7'), 'knock');
    r.setMember(BOB, 'knock');
    assert.equal(allowed(r.member(BOB, 'leave')), true);
  });
});

describe('membership: invite', () => {
  test('inviter must be joined and at the invite level; target not joined or banned', () => {
    const r = Room.standard(v('10'), 'invite', {}, { invite: 50 });
    assert.equal(allowed(r.member(BOB, 'invite', ALICE)), true);
    assert.equal(allowed(r.member(CAROL, 'invite', BOB)), false, 'bob not joined');
    r.setMember(BOB, 'join');
    assert.equal(allowed(r.member(CAROL, 'invite', BOB)), false, 'bob below invite level');
    assert.equal(allowed(r.member(BOB, 'invite', ALICE)), false, 'already joined');
    r.setMember(CAROL, 'ban', ALICE);
    assert.equal(allowed(r.member(CAROL, 'invite', ALICE)), false, 'banned');
  });

  test('third party invites: structure, token, sender and signature', () => {
    // The identity server's two keys; the invite lists the second in standard Base64, the first URL-safe.
    const idKey = generateSigningKey('0');
    const otherIdKey = generateSigningKey('1');
    const r = Room.standard(v('10'), 'invite');
    r.apply({
      type: 'm.room.third_party_invite', sender: ALICE, state_key: 'tok',
      content: {
        display_name: 'b', key_validity_url: 'https://x', public_key: publicKeyBase64(otherIdKey),
        public_keys: [{ public_key: encodeUnpaddedBase64Url(decodeBase64(publicKeyBase64(idKey))) }],
      },
    });
    const tpi = (signed: JsonObject | undefined, sender = ALICE): EvInit => ({
      type: 'm.room.member', sender, state_key: BOB,
      content: { membership: 'invite', third_party_invite: signed === undefined ? { display_name: 'b' } : { display_name: 'b', signed } },
    });
    const good = signJson({ mxid: BOB, token: 'tok' }, 'id.test', idKey) as unknown as JsonObject;
    assert.equal(allowed(r.check(tpi(good))), true, 'signed by a key of the invite');
    assert.equal(allowed(r.check(tpi(signJson({ mxid: BOB, token: 'tok' }, 'anything', otherIdKey) as unknown as JsonObject))), true, 'the public_key, any server label');
    const stranger = generateSigningKey('0');
    assert.equal(allowed(r.check(tpi(signJson({ mxid: BOB, token: 'tok' }, 'id.test', stranger) as unknown as JsonObject))), false, 'a key the invite does not list');
    assert.equal(allowed(r.check(tpi({ mxid: BOB, token: 'tok', signatures: { 'id.test': { 'ed25519:0': 'sig' } } }))), false, 'a made-up signature');
    assert.equal(allowed(r.check(tpi({ ...good, mxid: CAROL }))), false, 'mxid changed after signing (and mismatched)');
    assert.equal(allowed(r.check(tpi(undefined))), false, 'no signed');
    assert.equal(allowed(r.check(tpi({ mxid: BOB, signatures: good.signatures! }))), false, 'no token');
    assert.equal(allowed(r.check(tpi({ ...good, token: 'other' }))), false, 'unknown token');
    r.setMember(CAROL, 'join');
    assert.equal(allowed(r.check(tpi(good, CAROL))), false, 'sender differs from the invite sender');
    assert.equal(allowed(r.check(tpi({ mxid: BOB, token: 'tok', signatures: {} }))), false, 'no signature');
    let seenKeys: string[] = [];
    const verify = (ok: boolean): AuthOptions => ({ verifyThirdPartyInvite: (_s, keys) => { seenKeys = keys; return ok; } });
    assert.equal(allowed(r.check(tpi(good), verify(true))), true);
    assert.equal(seenKeys.length, 2);
    assert.equal(allowed(r.check(tpi(good), verify(false))), false);
  });

  test('a banned target cannot be third-party invited', () => {
    const r = Room.standard(v('10'), 'invite');
    r.put({ type: 'm.room.third_party_invite', sender: ALICE, state_key: 'tok', content: { public_key: 'pk' } });
    r.setMember(BOB, 'ban', ALICE);
    assert.equal(allowed(r.check({
      type: 'm.room.member', sender: ALICE, state_key: BOB,
      content: { membership: 'invite', third_party_invite: { signed: { mxid: BOB, token: 'tok', signatures: { s: { k: 'v' } } } } },
    })), false);
  });

  test('m.room.third_party_invite needs the invite level', () => {
    const r = Room.standard(v('10'), 'invite', { [BOB]: 10 }, { invite: 20 });
    r.setMember(BOB, 'join');
    assert.equal(allowed(r.check({ type: 'm.room.third_party_invite', sender: BOB, state_key: 't', content: {} })), false);
    assert.equal(allowed(r.check({ type: 'm.room.third_party_invite', sender: ALICE, state_key: 't', content: {} })), true);
  });
});

describe('membership: leave, kick, ban', () => {
  test("can't kick someone of equal power", () => {
    const r = Room.standard(v('10'), 'public', { [BOB]: 50, [CAROL]: 50, [DAVE]: 0 });
    for (const u of [BOB, CAROL, DAVE]) r.setMember(u, 'join');
    assert.equal(allowed(r.member(CAROL, 'leave', BOB)), false);
    assert.equal(allowed(r.member(DAVE, 'leave', BOB)), true);
    assert.equal(allowed(r.member(BOB, 'leave', ALICE)), true);
  });

  test('kick needs the kick level and ban needs the ban level', () => {
    const r = Room.standard(v('10'), 'public', { [BOB]: 30 }, { kick: 20, ban: 40 });
    r.setMember(BOB, 'join');
    r.setMember(CAROL, 'join');
    assert.equal(allowed(r.member(CAROL, 'leave', BOB)), true);
    assert.equal(allowed(r.member(CAROL, 'ban', BOB)), false);
    assert.equal(allowed(r.member(CAROL, 'ban', ALICE)), true);
  });

  test('a user who is not joined cannot kick or ban', () => {
    const r = Room.standard(v('10'), 'public', { [BOB]: 100 });
    r.setMember(CAROL, 'join');
    assert.equal(allowed(r.member(CAROL, 'leave', BOB)), false);
    assert.equal(allowed(r.member(CAROL, 'ban', BOB)), false);
  });

  test('leaving yourself requires being invited or joined', () => {
    const r = Room.standard(v('10'));
    assert.equal(allowed(r.member(BOB, 'leave')), false);
    r.setMember(BOB, 'invite', ALICE);
    assert.equal(allowed(r.member(BOB, 'leave')), true);
    r.setMember(BOB, 'ban', ALICE);
    assert.equal(allowed(r.member(BOB, 'leave')), false, 'a banned user cannot unban themselves');
  });

  test('unbanning needs the ban level as well as the kick level', () => {
    const r = Room.standard(v('10'), 'public', { [BOB]: 50 }, { kick: 50, ban: 75 });
    r.setMember(BOB, 'join');
    r.setMember(CAROL, 'ban', ALICE);
    assert.equal(allowed(r.member(CAROL, 'leave', BOB)), false);
    assert.equal(allowed(r.member(CAROL, 'leave', ALICE)), true);
  });

  test('unknown membership is rejected', () => {
    assert.equal(allowed(Room.standard(v('10')).member(BOB, 'wander')), false);
    assert.equal(allowed(Room.standard(v('10')).check({ type: 'm.room.member', sender: BOB, content: { membership: 'join' } })), false);
  });
});

describe('non-member events', () => {
  test('sender must be joined', () => {
    const r = Room.standard(v('10'));
    assert.equal(allowed(r.check({ type: 'm.room.message', sender: BOB, content: {} })), false);
    r.setMember(BOB, 'join');
    assert.equal(allowed(r.check({ type: 'm.room.message', sender: BOB, content: {} })), true);
  });

  test('events_default and state_default gate message and state events', () => {
    const r = Room.standard(v('10'), 'public', { [BOB]: 10 }, {
      events_default: 10, state_default: 60, events: { 'm.room.topic': 5, 'm.custom.loud': 20 },
    });
    r.setMember(BOB, 'join');
    r.setMember(CAROL, 'join');
    assert.equal(allowed(r.check({ type: 'm.room.message', sender: BOB, content: {} })), true);
    assert.equal(allowed(r.check({ type: 'm.room.message', sender: CAROL, content: {} })), false, 'carol 0 < events_default 10');
    assert.equal(allowed(r.check({ type: 'm.custom.loud', sender: BOB, content: {} })), false, 'events override');
    assert.equal(allowed(r.check({ type: 'm.room.name', sender: BOB, state_key: '', content: {} })), false, 'state_default 60');
    assert.equal(allowed(r.check({ type: 'm.room.topic', sender: BOB, state_key: '', content: {} })), true, 'events override for state');
  });

  test('without a power levels event the creator has 100 and state needs 50 (v1-v11)', () => {
    const r = new Room(v('10'));
    r.apply({ type: 'm.room.member', sender: ALICE, state_key: ALICE, content: { membership: 'join' } });
    r.apply({ type: 'm.room.join_rules', sender: ALICE, state_key: '', content: { join_rule: 'public' } });
    r.apply({ type: 'm.room.member', sender: BOB, state_key: BOB, content: { membership: 'join' } });
    assert.equal(allowed(r.check({ type: 'm.room.name', sender: BOB, state_key: '', content: {} })), false);
    assert.equal(allowed(r.check({ type: 'm.room.message', sender: BOB, content: {} })), true);
    assert.equal(allowed(r.check({ type: 'm.room.name', sender: ALICE, state_key: '', content: {} })), true);
  });

  test('v11 implicit creator: the create sender has creator powers', () => {
    const r = new Room(v('11'), { creator: BOB });
    assert.equal(allowed(r.member(ALICE, 'join')), false);
    r.apply({ type: 'm.room.member', sender: BOB, state_key: BOB, content: { membership: 'join' } });
    assert.equal(allowed(r.check({ type: 'm.room.name', sender: BOB, state_key: '', content: {} })), true);
    assert.equal(allowed(r.check({
      type: 'm.room.power_levels', sender: BOB, state_key: '', content: { users: { [BOB]: 100 } },
    })), true);
    // v10 reads `creator` from content instead.
    const r10 = new Room(v('10'), { creator: BOB, createContent: { creator: CAROL } });
    assert.equal(allowed(r10.member(BOB, 'join')), false);
    assert.equal(allowed(r10.member(CAROL, 'join')), true);
  });

  test('a state_key starting with @ must be the sender', () => {
    const r = Room.standard(v('10'), 'public', {}, { state_default: 0 });
    r.setMember(BOB, 'join');
    assert.equal(allowed(r.check({ type: 'm.custom', sender: BOB, state_key: BOB, content: {} })), true);
    assert.equal(allowed(r.check({ type: 'm.custom', sender: BOB, state_key: ALICE, content: {} })), false);
    assert.equal(allowed(r.check({ type: 'm.custom', sender: BOB, state_key: 'x', content: {} })), true);
  });

  test('m.federate false keeps other servers out', () => {
    const r = new Room(v('10'), { createContent: { 'm.federate': false } });
    r.apply({ type: 'm.room.member', sender: ALICE, state_key: ALICE, content: { membership: 'join' } });
    r.apply({ type: 'm.room.join_rules', sender: ALICE, state_key: '', content: { join_rule: 'public' } });
    assert.equal(allowed(r.member(BOB, 'join')), false);
    assert.equal(allowed(r.member('@alice2:a.test', 'join')), true);
  });

  test('m.room.aliases is authorised by domain in v1-v5 only', () => {
    const r5 = Room.standard(v('5'));
    r5.setMember(BOB, 'join');
    assert.equal(allowed(r5.check({ type: 'm.room.aliases', sender: BOB, state_key: 'b.test', content: {} })), true);
    assert.equal(allowed(r5.check({ type: 'm.room.aliases', sender: BOB, state_key: 'a.test', content: {} })), false);
    // Not even membership is needed under the special case.
    assert.equal(allowed(r5.check({ type: 'm.room.aliases', sender: CAROL, state_key: 'c.test', content: {} })), true);
    const r6 = Room.standard(v('6'));
    r6.setMember(BOB, 'join');
    assert.equal(allowed(r6.check({ type: 'm.room.aliases', sender: BOB, state_key: 'b.test', content: {} })), false, 'state_default 50');
  });
});

describe('power levels changes', () => {
  const pl = (r: Room, sender: string, content: JsonObject): AuthResult =>
    r.check({ type: 'm.room.power_levels', sender, state_key: '', content });

  test("can't raise a user above own level", () => {
    const r = Room.standard(v('10'), 'public', { [BOB]: 50 });
    r.setMember(BOB, 'join');
    r.apply({ type: 'm.room.power_levels', sender: ALICE, state_key: '', content: { users: { [ALICE]: 100, [BOB]: 50 }, events: { 'm.room.power_levels': 50 } } });
    const base = { [ALICE]: 100, [BOB]: 50 };
    const ev = { 'm.room.power_levels': 50 };
    assert.equal(allowed(pl(r, BOB, { users: { ...base, [CAROL]: 51 }, events: ev })), false);
    assert.equal(allowed(pl(r, BOB, { users: { ...base, [CAROL]: 50 }, events: ev })), true);
    assert.equal(allowed(pl(r, BOB, { users: { ...base, [BOB]: 60 }, events: ev })), false, 'not even yourself');
    assert.equal(allowed(pl(r, BOB, { users: { ...base, [BOB]: 10 }, events: ev })), true, 'demoting yourself is fine');
    assert.equal(allowed(pl(r, BOB, { users: { ...base, [ALICE]: 0 }, events: ev })), false, 'cannot demote a higher user');
    assert.equal(allowed(pl(r, BOB, { users: base, events: ev, ban: 60 })), false, 'scalar above own level');
    assert.equal(allowed(pl(r, BOB, { users: base, events: ev, kick: 40 })), true, 'changing a scalar from 50 to 40');
    assert.equal(allowed(pl(r, BOB, { users: base, events: { ...ev, 'm.room.name': 70 } })), false, 'event level above own');
  });

  test('equal admins cannot demote each other', () => {
    const r = Room.standard(v('10'), 'public', { [BOB]: 100 });
    r.setMember(BOB, 'join');
    assert.equal(allowed(pl(r, ALICE, { users: { [ALICE]: 100, [BOB]: 0 } })), false);
    assert.equal(allowed(pl(r, BOB, { users: { [ALICE]: 0, [BOB]: 100 } })), false);
  });

  test('levels currently above the sender cannot be changed', () => {
    const r = Room.standard(v('10'), 'public', { [BOB]: 50 }, { state_default: 50, redact: 80 });
    r.setMember(BOB, 'join');
    assert.equal(allowed(pl(r, BOB, { users: { [ALICE]: 100, [BOB]: 50 }, state_default: 50, redact: 40 })), false);
    assert.equal(allowed(pl(r, BOB, { users: { [ALICE]: 100, [BOB]: 50 }, state_default: 50 })), false, 'removing redact counts');
  });

  test('integer power levels are required from v10 and strings accepted before', () => {
    const stringy = { users: { [ALICE]: '100' }, ban: '50' };
    assert.equal(allowed(pl(Room.standard(v('9')), ALICE, stringy)), true);
    assert.equal(allowed(pl(Room.standard(v('10')), ALICE, stringy)), false);
    assert.equal(allowed(pl(Room.standard(v('10')), ALICE, { users: { [ALICE]: 100 }, events: { x: 'a' } })), false);
    assert.equal(allowed(pl(Room.standard(v('10')), ALICE, { users: { [ALICE]: 100 }, notifications: 5 })), false);
    assert.equal(allowed(pl(Room.standard(v('1')), ALICE, { users: { [ALICE]: 'lots' } })), false);
    assert.equal(allowed(pl(Room.standard(v('10')), ALICE, { users: { notauser: 1, [ALICE]: 100 } })), false);
  });

  test('notifications levels are protected from v6', () => {
    const r5 = Room.standard(v('5'), 'public', { [BOB]: 50 }, { notifications: { room: 80 } });
    r5.setMember(BOB, 'join');
    const content = { users: { [ALICE]: 100, [BOB]: 50 }, notifications: { room: 10 } };
    assert.equal(allowed(pl(r5, BOB, content)), true);
    const r6 = Room.standard(v('6'), 'public', { [BOB]: 50 }, { notifications: { room: 80 } });
    r6.setMember(BOB, 'join');
    assert.equal(allowed(pl(r6, BOB, content)), false);
  });
});

describe('v12 privileged creators', () => {
  const v12 = v('12');

  test('creators have infinite power and cannot be demoted, kicked or banned by an admin at 100', () => {
    const r = Room.standard(v12, 'public', { [BOB]: 100 });
    r.setMember(BOB, 'join');
    assert.equal(allowed(r.member(ALICE, 'leave', BOB)), false, 'kick');
    assert.equal(allowed(r.member(ALICE, 'ban', BOB)), false, 'ban');
    assert.equal(allowed(r.check({ type: 'm.room.power_levels', sender: BOB, state_key: '', content: { users: { [BOB]: 100, [ALICE]: 0 } } })), false, 'listing the creator');
    assert.equal(allowed(r.member(BOB, 'ban', ALICE)), true, 'the creator bans the admin');
    assert.equal(allowed(r.check({ type: 'm.room.power_levels', sender: ALICE, state_key: '', content: { users: { [BOB]: 0 } } })), true, 'creator demotes admin');
  });

  test('additional creators are creators too, and cannot kick each other', () => {
    const r = new Room(v12, { createContent: { additional_creators: [BOB] } });
    r.apply({ type: 'm.room.member', sender: ALICE, state_key: ALICE, content: { membership: 'join' } });
    r.apply({ type: 'm.room.join_rules', sender: ALICE, state_key: '', content: { join_rule: 'public' } });
    r.apply({ type: 'm.room.member', sender: BOB, state_key: BOB, content: { membership: 'join' } });
    assert.equal(allowed(r.check({ type: 'm.room.name', sender: BOB, state_key: '', content: {} })), true);
    assert.equal(allowed(r.check({ type: 'm.room.power_levels', sender: ALICE, state_key: '', content: { users: { [BOB]: 50 } } })), false);
    assert.equal(allowed(r.member(BOB, 'leave', ALICE)), false);
    assert.equal(allowed(r.member(ALICE, 'ban', BOB)), false);
    // additional creators do not get the creator's first-join exception
    const r2 = new Room(v12, { createContent: { additional_creators: [BOB] } });
    assert.equal(allowed(r2.member(BOB, 'join')), false);
  });

  test('the create event is not selected as an auth event in v12', () => {
    const r = Room.standard(v12);
    const ev = r.event({ type: 'm.room.message', sender: ALICE, content: {} });
    assert.deepEqual(authEventSelection(ev.pdu, v12).map(([t]) => t), ['m.room.power_levels', 'm.room.member']);
    assert.ok(!ev.pdu.auth_events.includes(r.create.eventId));
  });
});

describe('redactions', () => {
  test('v1/v2: redaction needs the redact level unless the event ids share a domain', () => {
    const r = Room.standard(v('2'));
    r.setMember(BOB, 'join');
    const red = (redacts: string): AuthResult =>
      r.check({ id: '$red:b.test', type: 'm.room.redaction', sender: BOB, content: {}, redacts });
    assert.equal(allowed(red('$orig:b.test')), true);
    assert.equal(allowed(red('$orig:a.test')), false);
    assert.equal(allowed(r.check({ id: '$red2:a.test', type: 'm.room.redaction', sender: ALICE, content: {}, redacts: '$x:b.test' })), true);
  });

  test('v3+: the redact level is not an auth rule; handling decides', () => {
    const r = Room.standard(v('10'));
    r.setMember(BOB, 'join');
    r.setMember(CAROL, 'join');
    const redaction = r.event({ type: 'm.room.redaction', sender: BOB, content: {}, redacts: '$orig' });
    assert.equal(allowed(checkAuth(redaction, (t, k) => r.state.get(stateKey(t, k)), v('10'), r.create)), true);
    const pls = parsePowerLevels(r.state.get(stateKey('m.room.power_levels', ''))!.pdu.content, v('10'), roomCreators(r.create.pdu, v('10')));
    const ownEvent = { eventId: '$orig', pdu: r.pdu({ type: 'm.room.message', sender: '@bob2:b.test', content: {} }) };
    const othersEvent = { eventId: '$orig', pdu: r.pdu({ type: 'm.room.message', sender: CAROL, content: {} }) };
    assert.equal(shouldApplyRedaction(redaction, ownEvent, pls, v('10')), true, 'same server');
    assert.equal(shouldApplyRedaction(redaction, othersEvent, pls, v('10')), false);
    const adminRedaction = r.event({ type: 'm.room.redaction', sender: ALICE, content: {}, redacts: '$orig' });
    assert.equal(shouldApplyRedaction(adminRedaction, othersEvent, pls, v('10')), true, 'power');
  });

  test('v11 moved redacts into content', () => {
    const r = Room.standard(v('11'));
    const top = r.event({ type: 'm.room.redaction', sender: ALICE, content: {}, redacts: '$a' });
    const inContent = r.event({ type: 'm.room.redaction', sender: ALICE, content: { redacts: '$b' } });
    assert.equal(redactsOf(top.pdu, v('11')), undefined);
    assert.equal(redactsOf(inContent.pdu, v('11')), '$b');
    assert.equal(redactsOf(top.pdu, v('10')), '$a');
  });

  test('redaction events are gated by events/events_default like any event', () => {
    const r = Room.standard(v('11'), 'public', {}, { events: { 'm.room.redaction': 10 } });
    r.setMember(BOB, 'join');
    assert.equal(allowed(r.check({ type: 'm.room.redaction', sender: BOB, content: { redacts: '$x' } })), false);
  });
});

describe('auth events list and selection', () => {
  test('selection for a restricted join with third party bits', () => {
    const r = Room.standard(v('10'));
    const join = r.pdu({ type: 'm.room.member', sender: BOB, state_key: BOB, content: { membership: 'join', join_authorised_via_users_server: ALICE } });
    assert.deepEqual(authEventSelection(join, v('10')), [
      ['m.room.create', ''], ['m.room.power_levels', ''], ['m.room.member', BOB], ['m.room.join_rules', ''], ['m.room.member', ALICE],
    ]);
    assert.deepEqual(authEventSelection(join, v('7')).length, 4, 'no restricted joins before v8');
    const invite = r.pdu({ type: 'm.room.member', sender: ALICE, state_key: BOB, content: { membership: 'invite', third_party_invite: { signed: { token: 'tok' } } } });
    assert.deepEqual(authEventSelection(invite, v('10')).slice(2), [
      ['m.room.member', ALICE], ['m.room.member', BOB], ['m.room.join_rules', ''], ['m.room.third_party_invite', 'tok'],
    ]);
    assert.deepEqual(authEventSelection(r.create.pdu, v('10')), []);
  });

  test('duplicate, unexpected, foreign and missing-create auth events are rejected', () => {
    const r = Room.standard(v('10'));
    const get = (t: string, k = ''): EventWithId => r.state.get(stateKey(t, k))!;
    const msg = r.pdu({ type: 'm.room.message', sender: ALICE, content: {} });
    const good = [get('m.room.create'), get('m.room.power_levels'), get('m.room.member', ALICE)];
    assert.equal(allowed(checkAuthEventList(msg, good, v('10'))), true);
    assert.equal(allowed(checkAuthEventList(msg, [...good, get('m.room.power_levels')], v('10'))), false);
    assert.equal(allowed(checkAuthEventList(msg, [...good, get('m.room.join_rules')], v('10'))), false);
    assert.equal(allowed(checkAuthEventList(msg, good.slice(1), v('10'))), false);
    const foreign = { ...get('m.room.power_levels'), pdu: { ...get('m.room.power_levels').pdu, room_id: '!other:a.test' } };
    assert.equal(allowed(checkAuthEventList(msg, [good[0]!, foreign], v('10'))), false);
    const r12 = Room.standard(v('12'));
    const msg12 = r12.pdu({ type: 'm.room.message', sender: ALICE, content: {} });
    const pl12 = r12.state.get(stateKey('m.room.power_levels', ''))!;
    assert.equal(allowed(checkAuthEventList(msg12, [pl12], v('12'))), true);
    assert.equal(allowed(checkAuthEventList(msg12, [r12.create, pl12], v('12'))), false, 'create must not be selected in v12');
  });

  test('checkAuthAgainstAuthEvents combines the list rules with the auth rules', () => {
    const r = Room.standard(v('10'), 'invite');
    const join = r.event({ type: 'm.room.member', sender: BOB, state_key: BOB, content: { membership: 'join' } });
    const authOf = (e: EventWithId): EventWithId[] => [...r.state.values()].filter((s) => e.pdu.auth_events.includes(s.eventId));
    assert.equal(allowed(checkAuthAgainstAuthEvents(join, authOf(join), v('10'))), false, 'not invited');
    r.setMember(BOB, 'invite', ALICE);
    const join2 = r.event({ type: 'm.room.member', sender: BOB, state_key: BOB, content: { membership: 'join' } });
    assert.equal(allowed(checkAuthAgainstAuthEvents(join2, authOf(join2), v('10'))), true);
    assert.equal(allowed(checkAuthAgainstAuthEvents(join2, [...authOf(join2), r.state.get(stateKey('m.room.member', ALICE))!], v('10'))), false, 'extra entry');
    const r12 = Room.standard(v('12'));
    const msg = r12.event({ type: 'm.room.message', sender: ALICE, content: {} });
    const auth12 = [...r12.state.values()].filter((s) => msg.pdu.auth_events.includes(s.eventId));
    assert.equal(allowed(checkAuthAgainstAuthEvents(msg, auth12, v('12'), r12.create)), true);
    assert.equal(allowed(checkAuthAgainstAuthEvents(msg, auth12, v('12'))), false, 'v12 needs the create event');
  });

  test('authStateFromEvents builds a lookup usable by checkAuth', () => {
    const r = Room.standard(v('10'));
    const msg = r.event({ type: 'm.room.message', sender: ALICE, content: {} });
    const lookup = authStateFromEvents([...r.state.values()].filter((e) => msg.pdu.auth_events.includes(e.eventId)));
    assert.equal(allowed(checkAuth(msg, lookup, v('10'), undefined)), true);
    assert.equal(allowed(checkAuth(msg, () => undefined, v('10'), undefined)), false, 'no create at all');
  });
});
