import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonObject, Pdu } from '../../src/core/types.js';
import { ROOM_VERSIONS, type RoomVersion } from '../../src/core/room-versions.js';
import {
  CREATOR_POWER_LEVEL,
  canSendEvent,
  canSetNotification,
  checkPowerLevelsChange,
  isValidUserId,
  notificationPowerLevel,
  parsePowerLevelValue,
  parsePowerLevels,
  requiredPowerForEvent,
  roomCreators,
  userPowerLevel,
  validatePowerLevelsContent,
} from '../../src/core/power-levels.js';

const v = (id: string): RoomVersion => ROOM_VERSIONS[id]!;
const ALICE = '@alice:a.test';
const BOB = '@bob:b.test';

function createPdu(sender: string, content: Pdu['content']): Pdu {
  return {
    room_id: '!r:a.test', sender, type: 'm.room.create', state_key: '', content,
    origin_server_ts: 0, depth: 1, prev_events: [], auth_events: [], hashes: { sha256: '' }, signatures: {},
  };
}

describe('defaults', () => {
  test('without a power levels event: creator 100 (v1-v11), everyone else 0, spec defaults', () => {
    const pl = parsePowerLevels(undefined, v('10'), [ALICE]);
    assert.equal(userPowerLevel(pl, ALICE), 100);
    assert.equal(userPowerLevel(pl, BOB), 0);
    assert.equal(pl.stateDefault, 50);
    assert.equal(pl.eventsDefault, 0);
    assert.deepEqual([pl.ban, pl.kick, pl.redact, pl.invite], [50, 50, 50, 0]);
    assert.equal(notificationPowerLevel(pl, 'room'), 50);
    assert.equal(pl.fromEvent, false);
  });

  test('an empty power levels event gives nobody special power (v1-v11)', () => {
    const pl = parsePowerLevels({}, v('11'), [ALICE]);
    assert.equal(userPowerLevel(pl, ALICE), 0);
    assert.equal(requiredPowerForEvent(pl, 'm.room.name', true), 50);
    assert.equal(requiredPowerForEvent(pl, 'm.room.message', false), 0);
  });

  test('v12 creators are infinite with or without a power levels event', () => {
    const contents: Array<[JsonObject | undefined, number]> = [[undefined, 0], [{}, 0], [{ users_default: 10 }, 10]];
    for (const [content, others] of contents) {
      const pl = parsePowerLevels(content, v('12'), [ALICE, BOB]);
      assert.equal(userPowerLevel(pl, ALICE), CREATOR_POWER_LEVEL);
      assert.equal(userPowerLevel(pl, BOB), Infinity);
      assert.equal(userPowerLevel(pl, '@carol:c.test'), others);
    }
  });

  test('roomCreators per version', () => {
    const c = createPdu(ALICE, { creator: BOB, additional_creators: ['@carol:c.test'] });
    assert.deepEqual([...roomCreators(c, v('10'))], [BOB]);
    assert.deepEqual([...roomCreators(c, v('11'))], [ALICE]);
    assert.deepEqual([...roomCreators(c, v('12'))], [ALICE, '@carol:c.test']);
  });
});

describe('value formats', () => {
  test('strings accepted v1-v9, floats v1-v5, integers only from v10', () => {
    assert.equal(parsePowerLevelValue(' +0100 ', v('9')), 100);
    assert.equal(parsePowerLevelValue('-5', v('1')), -5);
    assert.equal(parsePowerLevelValue('1.5', v('1')), undefined);
    assert.equal(parsePowerLevelValue('100', v('10')), undefined);
    assert.equal(parsePowerLevelValue(50.57, v('5')), 50);
    assert.equal(parsePowerLevelValue(-1.9, v('5')), -1);
    assert.equal(parsePowerLevelValue(50.57, v('6')), undefined);
    assert.equal(parsePowerLevelValue(true, v('1')), undefined);
    assert.equal(parsePowerLevelValue(2 ** 60, v('10')), undefined);
  });

  test('the floaty example from the spec: alice 50 and bob 50.57 are equal (v1-v5)', () => {
    const pl = parsePowerLevels({ users: { '@alice:localhost': 50, '@bob:localhost': 50.57 } }, v('3'), []);
    assert.equal(userPowerLevel(pl, '@bob:localhost'), userPowerLevel(pl, '@alice:localhost'));
  });

  test('the stringy example from the spec parses', () => {
    const pl = parsePowerLevels({
      ban: '50', events: { 'm.room.power_levels': '100' }, events_default: '0', state_default: '50',
      users: { '@example:localhost': '100' }, users_default: '0',
    }, v('9'), []);
    assert.equal(pl.ban, 50);
    assert.equal(requiredPowerForEvent(pl, 'm.room.power_levels', true), 100);
    assert.equal(userPowerLevel(pl, '@example:localhost'), 100);
  });
});

describe('permissions', () => {
  test('canSendEvent uses events, then state_default/events_default', () => {
    const pl = parsePowerLevels({ users: { [BOB]: 20 }, events: { 'm.room.topic': 10, 'm.big': 30 }, events_default: 5, state_default: 25 }, v('10'), []);
    assert.equal(canSendEvent(pl, BOB, 'm.room.topic', true), true);
    assert.equal(canSendEvent(pl, BOB, 'm.room.name', true), false);
    assert.equal(canSendEvent(pl, BOB, 'm.room.message', false), true);
    assert.equal(canSendEvent(pl, BOB, 'm.big', false), false);
    assert.equal(canSendEvent(pl, ALICE, 'm.room.message', false), false);
  });

  test('notification levels: room defaults to 50', () => {
    const pl = parsePowerLevels({ users: { [BOB]: 40 } }, v('10'), []);
    assert.equal(canSetNotification(pl, BOB, 'room'), false);
    const pl2 = parsePowerLevels({ users: { [BOB]: 40 }, notifications: { room: 40 } }, v('10'), []);
    assert.equal(canSetNotification(pl2, BOB, 'room'), true);
  });

  test('an explicit context overrides the parsed one', () => {
    const pl = parsePowerLevels({ users: { [BOB]: 1 } }, v('12'), []);
    assert.equal(userPowerLevel(pl, BOB), 1);
    assert.equal(userPowerLevel(pl, BOB, { creators: new Set([BOB]), privilegedCreators: true }), Infinity);
  });
});

describe('validation of new power levels', () => {
  test('v10+ rejects non-integers anywhere', () => {
    assert.equal(validatePowerLevelsContent({ ban: 50, users: { [ALICE]: 100 } }, v('10')), undefined);
    assert.ok(validatePowerLevelsContent({ ban: '50' }, v('10')));
    assert.ok(validatePowerLevelsContent({ ban: 1.5 }, v('10')));
    assert.ok(validatePowerLevelsContent({ events: { a: '1' } }, v('10')));
    assert.ok(validatePowerLevelsContent({ events: [] }, v('10')));
    assert.ok(validatePowerLevelsContent({ notifications: { room: null } }, v('10')));
    assert.equal(validatePowerLevelsContent({ ban: '50', events: { a: 'x' } }, v('9')), undefined, 'not checked before v10');
  });

  test('users must map user IDs to integers', () => {
    assert.ok(validatePowerLevelsContent({ users: [] }, v('1')));
    assert.ok(validatePowerLevelsContent({ users: { alice: 1 } }, v('1')));
    assert.ok(validatePowerLevelsContent({ users: { [ALICE]: 'x' } }, v('1')));
    assert.equal(validatePowerLevelsContent({ users: { [ALICE]: '7' } }, v('1')), undefined);
    assert.equal(validatePowerLevelsContent({ users: { '@Historical User!:a.test:8448': 1 } }, v('10')), undefined);
  });

  test('v12 rejects creators in users', () => {
    assert.ok(validatePowerLevelsContent({ users: { [ALICE]: 100 } }, v('12'), [ALICE]));
    assert.equal(validatePowerLevelsContent({ users: { [ALICE]: 100 } }, v('11'), [ALICE]), undefined);
  });

  test('change rules: scalars, events, users', () => {
    const prev = { users: { [ALICE]: 100, [BOB]: 50, '@c:c.test': 50 }, kick: 50, events: { 'm.x': 60 } };
    const ten = v('10');
    assert.equal(checkPowerLevelsChange(undefined, { users: { [BOB]: 1000 } }, BOB, 0, ten), undefined, 'first power levels');
    assert.equal(checkPowerLevelsChange(prev, prev, BOB, 50, ten), undefined, 'no change');
    assert.ok(checkPowerLevelsChange(prev, { ...prev, kick: 51 }, BOB, 50, ten));
    assert.equal(checkPowerLevelsChange(prev, { ...prev, kick: 0 }, BOB, 50, ten), undefined);
    assert.ok(checkPowerLevelsChange(prev, { ...prev, events: {} }, BOB, 50, ten), 'removing an event level above self');
    assert.ok(checkPowerLevelsChange(prev, { ...prev, users: { ...prev.users, '@c:c.test': 0 } }, BOB, 50, ten), 'peer');
    assert.equal(checkPowerLevelsChange(prev, { ...prev, users: { ...prev.users, '@c:c.test': 0 } }, ALICE, 100, ten), undefined);
    assert.equal(checkPowerLevelsChange(prev, { ...prev, users: { [ALICE]: 100, '@c:c.test': 50 } }, BOB, 50, ten), undefined, 'removing yourself');
    assert.ok(checkPowerLevelsChange(prev, { ...prev, users: { ...prev.users, '@d:d.test': 51 } }, BOB, 50, ten));
    assert.equal(checkPowerLevelsChange(prev, { ...prev, users: { ...prev.users, [ALICE]: 0 } }, ALICE, Infinity, v('12')), undefined);
  });

  test('stringy and integer forms of the same level are not a change (v1-v9)', () => {
    const prev = { users: { [ALICE]: '100' }, ban: '50' };
    assert.equal(checkPowerLevelsChange(prev, { users: { [ALICE]: 100 }, ban: 50 }, '@z:z.test', 0, v('9')), undefined);
  });
});

describe('user IDs', () => {
  test('historical grammar accepted, malformed rejected', () => {
    for (const ok of ['@a:b.c', '@A_b!:x.org:8448', '@:x.org', '@u:[::1]:80', '@u:1.2.3.4']) assert.equal(isValidUserId(ok), true, ok);
    for (const bad of ['a:b', '@nohost', '@a:', '@a:b c', '@a:999.1.1.1', `@${'x'.repeat(260)}:a.b`, '@a\u0000:b.c']) {
      assert.equal(isValidUserId(bad), false, JSON.stringify(bad));
    }
  });
});
