import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultPushRules } from '../../src/core/push/default-rules.js';
import { evaluatePushRules } from '../../src/core/push/evaluator.js';
import { evaluateForMembers, sameOutcome, usersNamedBy, usesDefaultsOnly, type RoomMember } from '../../src/core/push/room-evaluation.js';
import { emptyUserPushRules, insertUserRule, mergeWithDefaults, setEnabled, type UserPushRules } from '../../src/core/push/rule-edit.js';
import type { ClientEventLike } from '../../src/core/push/types.js';

const ROOM = '!r:hs';

function edited(userId: string, ...edits: ((r: UserPushRules) => UserPushRules)[]): RoomMember {
  let r = emptyUserPushRules();
  for (const e of edits) r = e(r);
  return { userId, rules: mergeWithDefaults(r, userId) };
}

const ok = <T>(res: { ok: true; value: T } | { ok: false }): T => {
  assert.ok(res.ok);
  return res.value;
};

describe('Push rules for a whole room at once (core/push/room-evaluation)', () => {
  const members: RoomMember[] = [
    { userId: '@alice:hs', rules: null },
    { userId: '@Bob:hs', rules: null },
    { userId: '@carol:hs', rules: null, displayName: 'Carol' },
    edited('@dan:hs', (r) => ok(insertUserRule(r, 'room', ROOM, { actions: [] }, {}))),
    edited('@erin:hs', (r) => ok(insertUserRule(r, 'content', 'cake', { pattern: 'cake', actions: ['notify', { set_tweak: 'highlight' }] }, {}))),
    edited('@fay:hs', (r) => ok(setEnabled(r, 'underride', '.m.rule.message', false))),
    edited('@gus:hs', (r) => ok(insertUserRule(r, 'sender', '@alice:hs', { actions: ['notify', { set_tweak: 'sound', value: 'x' }] }, {}))),
  ];
  const msg = (content: object, extra: Partial<ClientEventLike> = {}): ClientEventLike => ({
    type: 'm.room.message',
    content: { msgtype: 'm.text', ...content },
    sender: '@alice:hs',
    room_id: ROOM,
    ...extra,
  });
  const events: ClientEventLike[] = [
    msg({ body: 'hello' }),
    msg({ body: 'cake!' }),
    msg({ body: 'hi', 'm.mentions': { user_ids: ['@bob:hs', '@carol:hs'] } }),
    msg({ body: 'all', 'm.mentions': { room: true } }),
    msg({ msgtype: 'm.notice', body: 'bot' }),
    msg({ body: 'from bob' }, { sender: '@Bob:hs' }),
    { type: 'm.room.member', content: { membership: 'invite' }, sender: '@alice:hs', state_key: '@BOB:hs', room_id: ROOM },
    { type: 'm.room.encrypted', content: { ciphertext: 'x' }, sender: '@alice:hs', room_id: ROOM },
    { type: 'm.room.tombstone', content: { body: 'moved' }, sender: '@alice:hs', state_key: '', room_id: ROOM },
    { type: 'm.reaction', content: {}, sender: '@alice:hs', room_id: ROOM },
  ];

  for (const count of [2, 7, 50]) {
    for (const power of [0, 100]) {
      it(`gives each member what their own evaluation gives (${count} members, sender power ${power})`, () => {
        const shared = { roomMemberCount: count, senderPowerLevel: power, notificationPowerLevels: {} };
        for (const event of events) {
          const { base, exceptions } = evaluateForMembers(event, shared, members);
          for (const m of members) {
            if (m.userId === event.sender) {
              assert.ok(!exceptions.has(m.userId));
              continue;
            }
            const own = evaluatePushRules(m.rules ?? defaultPushRules(m.userId), event, { ...shared, userId: m.userId, displayName: m.displayName });
            const got = exceptions.get(m.userId) ?? base;
            assert.ok(sameOutcome(own, got), `${m.userId} for ${JSON.stringify(event)}: ${JSON.stringify(got)} != ${JSON.stringify(own)}`);
            if (exceptions.has(m.userId)) assert.ok(!sameOutcome(own, base), `${m.userId} is an exception only when it differs`);
          }
        }
      });
    }
  }

  it('finds the users an event names where the defaults look (state_key, m.mentions.user_ids), ignoring case', () => {
    assert.deepEqual([...usersNamedBy(msg({ body: 'x', 'm.mentions': { user_ids: ['@A:hs', 3] } }))!], ['@a:hs']);
    assert.deepEqual([...usersNamedBy({ type: 'm.room.member', content: {}, sender: '@x:hs', state_key: '@Y:hs', room_id: ROOM })!], ['@y:hs']);
    assert.equal(usersNamedBy(msg({ body: 'x' }))!.size, 0);
  });

  it('a stored document changes nothing only when it has no rule of its own and no change to a default', () => {
    assert.ok(usesDefaultsOnly(undefined));
    assert.ok(usesDefaultsOnly(emptyUserPushRules()));
    assert.ok(!usesDefaultsOnly(ok(setEnabled(emptyUserPushRules(), 'underride', '.m.rule.message', false))));
    assert.ok(!usesDefaultsOnly(ok(insertUserRule(emptyUserPushRules(), 'room', ROOM, { actions: [] }, {}))));
  });
});
