import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { defaultPushRules, DEFAULT_RULE_IDS } from '../../src/core/push/default-rules.js';
import {
  conditionMatches,
  evaluatePushRules,
  parseKeyPath,
  resolveEventPath,
} from '../../src/core/push/evaluator.js';
import { globMatch } from '../../src/core/push/glob.js';
import type { ClientEventLike, PushContext, PushRuleSet } from '../../src/core/push/evaluator.js';
import {
  deleteUserRule,
  emptyUserPushRules,
  findRule,
  insertUserRule,
  mergeWithDefaults,
  setActions,
  setEnabled,
  validateKind,
  validateRuleId,
} from '../../src/core/push/rule-edit.js';
import type { UserPushRules } from '../../src/core/push/rule-edit.js';

const ME = '@alice:example.org';
const BOB = '@bob:example.org';
const ROOM = '!room:example.org';

function ctx(over: Partial<PushContext> = {}): PushContext {
  return {
    userId: ME,
    displayName: 'Alice',
    roomMemberCount: 5,
    senderPowerLevel: 0,
    notificationPowerLevels: { room: 50 },
    ...over,
  };
}

function ev(type: string, content: object, over: Partial<ClientEventLike> = {}): ClientEventLike {
  return { type, content, sender: BOB, room_id: ROOM, event_id: '$e:example.org', ...over };
}

const msg = (body: string, extra: object = {}): ClientEventLike =>
  ev('m.room.message', { msgtype: 'm.text', body, ...extra });

const rules = (): PushRuleSet => mergeWithDefaults(undefined, ME);

function unwrap<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) assert.fail(`expected ok, got error: ${r.error}`);
  return r.value;
}

describe('default rules (v1.19)', () => {
  it('lists the spec rules in the spec order', () => {
    const d = defaultPushRules(ME);
    assert.deepEqual(
      d.override.map((r) => r.rule_id),
      [
        '.m.rule.master',
        '.m.rule.suppress_notices',
        '.m.rule.invite_for_me',
        '.m.rule.member_event',
        '.m.rule.is_user_mention',
        '.m.rule.is_room_mention',
        '.m.rule.tombstone',
        '.m.rule.reaction',
        '.m.rule.room.server_acl',
        '.m.rule.suppress_edits',
      ],
    );
    assert.deepEqual(d.content, []);
    assert.deepEqual(d.room, []);
    assert.deepEqual(d.sender, []);
    assert.deepEqual(
      d.underride.map((r) => r.rule_id),
      ['.m.rule.call', '.m.rule.encrypted_room_one_to_one', '.m.rule.room_one_to_one', '.m.rule.message', '.m.rule.encrypted'],
    );
    for (const kind of ['override', 'underride'] as const) {
      for (const r of d[kind]) {
        assert.equal(r.default, true);
        assert.equal(r.enabled, r.rule_id !== '.m.rule.master');
        assert.ok(Array.isArray(r.conditions));
      }
    }
    assert.equal(DEFAULT_RULE_IDS.override.has('.m.rule.master'), true);
    assert.equal(DEFAULT_RULE_IDS.content.size, 0);
  });

  it('matches the spec definitions of the user-dependent rules', () => {
    const d = defaultPushRules(ME);
    assert.deepEqual(d.override[2], {
      rule_id: '.m.rule.invite_for_me',
      default: true,
      enabled: true,
      conditions: [
        { kind: 'event_match', key: 'type', pattern: 'm.room.member' },
        { kind: 'event_match', key: 'content.membership', pattern: 'invite' },
        { kind: 'event_match', key: 'state_key', pattern: ME },
      ],
      actions: ['notify', { set_tweak: 'sound', value: 'default' }],
    });
    assert.deepEqual(d.override[4]!.conditions, [
      { kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: ME },
    ]);
  });

  it('returns a fresh copy each time', () => {
    const a = defaultPushRules(ME);
    a.override[0]!.enabled = true;
    assert.equal(defaultPushRules(ME).override[0]!.enabled, false);
  });
});

describe('evaluating the default rules', () => {
  it('a message in a 2-member room notifies with sound (.m.rule.room_one_to_one)', () => {
    const r = evaluatePushRules(rules(), msg('hi'), ctx({ roomMemberCount: 2 }));
    assert.equal(r.ruleId, '.m.rule.room_one_to_one');
    assert.equal(r.kind, 'underride');
    assert.equal(r.notify, true);
    assert.equal(r.highlight, false);
    assert.equal(r.sound, 'default');
  });

  it('an encrypted event in a 2-member room (.m.rule.encrypted_room_one_to_one)', () => {
    const r = evaluatePushRules(rules(), ev('m.room.encrypted', { algorithm: 'm.megolm.v1.aes-sha2', ciphertext: 'x' }), ctx({ roomMemberCount: 2 }));
    assert.equal(r.ruleId, '.m.rule.encrypted_room_one_to_one');
    assert.equal(r.notify, true);
    assert.equal(r.sound, 'default');
  });

  it('a message in a group room notifies without sound or highlight (.m.rule.message)', () => {
    const r = evaluatePushRules(rules(), msg('hello all'), ctx());
    assert.equal(r.ruleId, '.m.rule.message');
    assert.deepEqual(r.actions, ['notify']);
    assert.equal(r.notify, true);
    assert.equal(r.highlight, false);
    assert.equal(r.sound, undefined);
  });

  it('an encrypted event in a group room (.m.rule.encrypted)', () => {
    const r = evaluatePushRules(rules(), ev('m.room.encrypted', { ciphertext: 'x' }), ctx({ roomMemberCount: 3 }));
    assert.equal(r.ruleId, '.m.rule.encrypted');
    assert.equal(r.notify, true);
  });

  it('a call invite rings (.m.rule.call)', () => {
    const r = evaluatePushRules(rules(), ev('m.call.invite', { call_id: '1', version: '1' }), ctx({ roomMemberCount: 2 }));
    assert.equal(r.ruleId, '.m.rule.call');
    assert.equal(r.sound, 'ring');
    assert.equal(r.notify, true);
  });

  it('a user mention via m.mentions highlights (.m.rule.is_user_mention)', () => {
    const r = evaluatePushRules(rules(), msg('hey Alice', { 'm.mentions': { user_ids: [BOB, ME] } }), ctx());
    assert.equal(r.ruleId, '.m.rule.is_user_mention');
    assert.equal(r.notify, true);
    assert.equal(r.highlight, true);
    assert.equal(r.sound, 'default');
  });

  it('mentioning someone else does not highlight; a body mention alone no longer does (v1.17)', () => {
    const other = evaluatePushRules(rules(), msg('hi', { 'm.mentions': { user_ids: [BOB] } }), ctx());
    assert.equal(other.ruleId, '.m.rule.message');
    assert.equal(other.highlight, false);
    const body = evaluatePushRules(rules(), msg('@alice:example.org Alice look'), ctx());
    assert.equal(body.ruleId, '.m.rule.message');
    assert.equal(body.highlight, false);
  });

  it('an unescaped "m.mentions" path does not match the m.mentions property', () => {
    const e = msg('hi', { 'm.mentions': { user_ids: [ME] } });
    assert.equal(conditionMatches({ kind: 'event_property_contains', key: 'content.m.mentions.user_ids', value: ME }, e, ctx()), false);
    assert.equal(conditionMatches({ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: ME }, e, ctx()), true);
  });

  it('@room highlights only when the sender has the notification power level (.m.rule.is_room_mention)', () => {
    const e = msg('@room meeting now', { 'm.mentions': { room: true } });
    const powerful = evaluatePushRules(rules(), e, ctx({ senderPowerLevel: 50 }));
    assert.equal(powerful.ruleId, '.m.rule.is_room_mention');
    assert.equal(powerful.highlight, true);
    assert.equal(powerful.notify, true);

    const weak = evaluatePushRules(rules(), e, ctx({ senderPowerLevel: 49 }));
    assert.equal(weak.ruleId, '.m.rule.message');
    assert.equal(weak.highlight, false);

    // notifications.room lowered to 0: anyone may @room.
    const open = evaluatePushRules(rules(), e, ctx({ senderPowerLevel: 0, notificationPowerLevels: { room: 0 } }));
    assert.equal(open.ruleId, '.m.rule.is_room_mention');

    // no notifications.room at all: default 50.
    const dflt = evaluatePushRules(rules(), e, ctx({ senderPowerLevel: 10, notificationPowerLevels: {} }));
    assert.equal(dflt.ruleId, '.m.rule.message');

    // m.mentions.room must be exactly `true`.
    const str = evaluatePushRules(rules(), msg('x', { 'm.mentions': { room: 'true' } }), ctx({ senderPowerLevel: 100 }));
    assert.equal(str.ruleId, '.m.rule.message');
  });

  it('m.notice is suppressed (.m.rule.suppress_notices), even in a DM', () => {
    const r = evaluatePushRules(rules(), ev('m.room.message', { msgtype: 'm.notice', body: 'bot says hi' }), ctx({ roomMemberCount: 2 }));
    assert.equal(r.ruleId, '.m.rule.suppress_notices');
    assert.equal(r.notify, false);
    assert.deepEqual(r.actions, []);
  });

  it('edits are suppressed (.m.rule.suppress_edits)', () => {
    const edit = msg('* fixed typo', {
      'm.new_content': { msgtype: 'm.text', body: 'fixed typo' },
      'm.relates_to': { rel_type: 'm.replace', event_id: '$orig' },
    });
    const r = evaluatePushRules(rules(), edit, ctx({ roomMemberCount: 2 }));
    assert.equal(r.ruleId, '.m.rule.suppress_edits');
    assert.equal(r.notify, false);
    // A reply (m.in_reply_to) is not an edit.
    const reply = msg('sure', { 'm.relates_to': { 'm.in_reply_to': { event_id: '$orig' } } });
    assert.equal(evaluatePushRules(rules(), reply, ctx()).ruleId, '.m.rule.message');
  });

  it('reactions do not notify (.m.rule.reaction)', () => {
    const r = evaluatePushRules(
      rules(),
      ev('m.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$x', key: '👍' } }),
      ctx({ roomMemberCount: 2 }),
    );
    assert.equal(r.ruleId, '.m.rule.reaction');
    assert.equal(r.notify, false);
  });

  it('an invite for me notifies (.m.rule.invite_for_me); other member events do not', () => {
    const invite = ev('m.room.member', { membership: 'invite', displayname: 'Alice' }, { state_key: ME });
    const r = evaluatePushRules(rules(), invite, ctx({ roomMemberCount: 1 }));
    assert.equal(r.ruleId, '.m.rule.invite_for_me');
    assert.equal(r.notify, true);
    assert.equal(r.sound, 'default');

    const otherInvite = ev('m.room.member', { membership: 'invite' }, { state_key: '@carol:example.org' });
    const o = evaluatePushRules(rules(), otherInvite, ctx());
    assert.equal(o.ruleId, '.m.rule.member_event');
    assert.equal(o.notify, false);

    const join = ev('m.room.member', { membership: 'join' }, { state_key: BOB });
    assert.equal(evaluatePushRules(rules(), join, ctx({ roomMemberCount: 2 })).ruleId, '.m.rule.member_event');
  });

  it('a room upgrade highlights (.m.rule.tombstone), but only as a state event', () => {
    const tomb = ev('m.room.tombstone', { body: 'moved', replacement_room: '!new:example.org' }, { state_key: '' });
    const r = evaluatePushRules(rules(), tomb, ctx());
    assert.equal(r.ruleId, '.m.rule.tombstone');
    assert.equal(r.highlight, true);
    const notState = ev('m.room.tombstone', { body: 'moved', replacement_room: '!new:example.org' });
    assert.equal(evaluatePushRules(rules(), notState, ctx()).ruleId, undefined);
  });

  it('server ACL changes are suppressed (.m.rule.room.server_acl)', () => {
    const acl = ev('m.room.server_acl', { allow: ['*'], deny: ['evil.example'] }, { state_key: '' });
    const r = evaluatePushRules(rules(), acl, ctx());
    assert.equal(r.ruleId, '.m.rule.room.server_acl');
    assert.equal(r.notify, false);
  });

  it('the master rule, once enabled, silences everything, even user rules and mentions', () => {
    let u = emptyUserPushRules();
    u = unwrap(insertUserRule(u, 'override', 'always', { actions: ['notify'], conditions: [] }));
    u = unwrap(setEnabled(u, 'override', '.m.rule.master', true));
    const set = mergeWithDefaults(u, ME);
    for (const e of [
      msg('hi'),
      msg('hi', { 'm.mentions': { user_ids: [ME] } }),
      ev('m.room.member', { membership: 'invite' }, { state_key: ME }),
    ]) {
      const r = evaluatePushRules(set, e, ctx({ roomMemberCount: 2 }));
      assert.equal(r.ruleId, '.m.rule.master');
      assert.equal(r.notify, false);
      assert.equal(r.highlight, false);
    }
  });

  it('other events match nothing and do not notify', () => {
    const r = evaluatePushRules(rules(), ev('m.room.topic', { topic: 'x' }, { state_key: '' }), ctx());
    assert.equal(r.ruleId, undefined);
    assert.equal(r.notify, false);
    assert.deepEqual(r.actions, []);
  });

  it('never notifies the sender about their own events', () => {
    const r = evaluatePushRules(rules(), msg('me', { 'm.mentions': { user_ids: [ME] } }), ctx({ userId: BOB }));
    assert.equal(r.notify, false);
    assert.equal(r.ruleId, undefined);
  });

  it('disabled default rules are skipped', () => {
    const u = unwrap(setEnabled(emptyUserPushRules(), 'override', '.m.rule.suppress_notices', false));
    const r = evaluatePushRules(mergeWithDefaults(u, ME), ev('m.room.message', { msgtype: 'm.notice', body: 'n' }), ctx());
    assert.equal(r.ruleId, '.m.rule.message');
  });
});

describe('rule kinds and precedence', () => {
  it('override > content > room > sender > underride', () => {
    let u = emptyUserPushRules();
    u = unwrap(insertUserRule(u, 'underride', 'u', { actions: ['notify', { set_tweak: 'sound', value: 'u' }] }));
    u = unwrap(insertUserRule(u, 'sender', BOB, { actions: ['notify', { set_tweak: 'sound', value: 's' }] }));
    u = unwrap(insertUserRule(u, 'room', ROOM, { actions: ['notify', { set_tweak: 'sound', value: 'r' }] }));
    u = unwrap(insertUserRule(u, 'content', 'c', { pattern: 'cake', actions: ['notify', { set_tweak: 'sound', value: 'c' }] }));
    u = unwrap(
      insertUserRule(u, 'override', 'o', {
        conditions: [{ kind: 'event_match', key: 'content.body', pattern: 'urgent' }],
        actions: ['notify', { set_tweak: 'sound', value: 'o' }],
      }),
    );
    const set = mergeWithDefaults(u, ME);
    const sound = (e: ClientEventLike) => evaluatePushRules(set, e, ctx()).sound;
    assert.equal(sound(msg('urgent: cake')), 'o');
    assert.equal(sound(msg('cake?')), 'c');
    assert.equal(sound(msg('pie')), 'r');
    assert.equal(sound(ev('m.room.message', { body: 'pie' }, { room_id: '!other:x' })), 's');
    assert.equal(sound(ev('m.room.message', { body: 'pie' }, { room_id: '!other:x', sender: '@carol:x' })), 'u');
  });

  it('a user underride comes before the default underrides; a user override after master only', () => {
    let u = emptyUserPushRules();
    u = unwrap(insertUserRule(u, 'underride', 'quiet', { actions: [], conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.message' }] }));
    assert.equal(evaluatePushRules(mergeWithDefaults(u, ME), msg('hi'), ctx()).ruleId, 'quiet');
    u = unwrap(insertUserRule(u, 'override', 'notices', { actions: ['notify'], conditions: [{ kind: 'event_match', key: 'content.msgtype', pattern: 'm.notice' }] }));
    const r = evaluatePushRules(mergeWithDefaults(u, ME), ev('m.room.message', { msgtype: 'm.notice', body: 'x' }), ctx());
    assert.equal(r.ruleId, 'notices');
    assert.equal(r.notify, true);
  });

  it('a muted room (room rule with no actions) wins over underrides but not over mentions', () => {
    const u = unwrap(insertUserRule(emptyUserPushRules(), 'room', ROOM, { actions: [] }));
    const set = mergeWithDefaults(u, ME);
    assert.equal(evaluatePushRules(set, msg('x'), ctx({ roomMemberCount: 2 })).notify, false);
    assert.equal(evaluatePushRules(set, msg('x', { 'm.mentions': { user_ids: [ME] } }), ctx()).highlight, true);
  });

  it('content rules match words of content.body only, and not without a body', () => {
    const u = unwrap(insertUserRule(emptyUserPushRules(), 'content', 'cake', { pattern: 'cake', actions: ['notify', { set_tweak: 'highlight' }] }));
    const set = mergeWithDefaults(u, ME);
    assert.equal(evaluatePushRules(set, msg('I like CAKE!'), ctx()).ruleId, 'cake');
    assert.equal(evaluatePushRules(set, msg('cupcakes'), ctx()).ruleId, '.m.rule.message');
    assert.equal(evaluatePushRules(set, ev('m.room.message', { msgtype: 'm.text' }), ctx()).ruleId, '.m.rule.message');
    assert.equal(evaluatePushRules(set, ev('m.room.message', { body: 42 }), ctx()).ruleId, '.m.rule.message');
  });

  it('historical dont_notify/coalesce actions are ignored', () => {
    const set: PushRuleSet = {
      override: [{ rule_id: 'x', default: false, enabled: true, conditions: [], actions: ['dont_notify', 'coalesce'] }],
      content: [],
      postcontent: [],
      room: [],
      sender: [],
      underride: [],
    };
    const r = evaluatePushRules(set, msg('hi'), ctx());
    assert.deepEqual(r.actions, []);
    assert.equal(r.notify, false);
    set.override[0]!.actions = ['coalesce', 'notify', { set_tweak: 'highlight', value: false }];
    const r2 = evaluatePushRules(set, msg('hi'), ctx());
    assert.deepEqual(r2.actions, ['notify', { set_tweak: 'highlight', value: false }]);
    assert.equal(r2.notify, true);
    assert.equal(r2.highlight, false);
  });

  it('a highlight tweak without notify does not highlight', () => {
    const set: PushRuleSet = {
      override: [{ rule_id: 'x', default: false, enabled: true, conditions: [], actions: [{ set_tweak: 'highlight' }] }],
      content: [], postcontent: [], room: [], sender: [], underride: [],
    };
    const r = evaluatePushRules(set, msg('hi'), ctx());
    assert.equal(r.notify, false);
    assert.equal(r.highlight, false);
  });

  it('unknown condition kinds never match; a rule without conditions always does', () => {
    const set: PushRuleSet = {
      override: [
        { rule_id: 'weird', default: false, enabled: true, conditions: [{ kind: 'org.example.future' }], actions: ['notify'] },
        { rule_id: 'all', default: false, enabled: true, actions: [] },
      ],
      content: [], postcontent: [], room: [], sender: [], underride: [],
    };
    assert.equal(evaluatePushRules(set, msg('hi'), ctx()).ruleId, 'all');
  });
});

describe('compiled rule cache', () => {
  it('notices replaced rules, conditions arrays and list changes', () => {
    const set: PushRuleSet = {
      override: [{ rule_id: 'a', default: false, enabled: true, conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.message' }], actions: ['notify'] }],
      content: [], postcontent: [], room: [], sender: [], underride: [],
    };
    assert.equal(evaluatePushRules(set, msg('x'), ctx()).ruleId, 'a');
    set.override[0]!.conditions = [{ kind: 'event_match', key: 'type', pattern: 'm.other' }];
    assert.equal(evaluatePushRules(set, msg('x'), ctx()).ruleId, undefined);
    set.override[0]!.conditions!.push({ kind: 'room_member_count', is: '5' });
    set.override[0] = { ...set.override[0]!, conditions: [] };
    assert.equal(evaluatePushRules(set, msg('x'), ctx()).ruleId, 'a');
    set.override.unshift({ rule_id: 'b', default: false, enabled: true, actions: [] });
    assert.equal(evaluatePushRules(set, msg('x'), ctx()).ruleId, 'b');
    set.override[0]!.enabled = false;
    assert.equal(evaluatePushRules(set, msg('x'), ctx()).ruleId, 'a');
  });

  it('equal-looking conditions of different types are not shared', () => {
    const e = ev('m.room.message', { n: 1, s: '1', z: null });
    const one = (key: string, value: unknown) =>
      evaluatePushRules(
        { override: [{ rule_id: 'r', default: false, enabled: true, conditions: [{ kind: 'event_property_is', key, value } as never], actions: ['notify'] }], content: [], postcontent: [], room: [], sender: [], underride: [] },
        e,
        ctx(),
      ).ruleId;
    assert.equal(one('content.n', 1), 'r');
    assert.equal(one('content.n', '1'), undefined);
    assert.equal(one('content.s', '1'), 'r');
    assert.equal(one('content.s', 1), undefined);
    assert.equal(one('content.z', null), 'r');
    assert.equal(one('content.z', undefined), undefined);
  });

  it('survives malformed stored rules', () => {
    const set = {
      override: [
        { rule_id: 'bad1', default: false, enabled: true, conditions: 'nope', actions: ['notify'] },
        { rule_id: 'bad2', default: false, enabled: true, conditions: [null, 5], actions: ['notify'] },
        { rule_id: 'bad3', default: false, enabled: true, conditions: [], actions: null },
      ],
      content: [{ rule_id: 'c', default: false, enabled: true, actions: ['notify'] }],
      room: [], sender: [], underride: [],
    } as unknown as PushRuleSet;
    const r = evaluatePushRules(set, msg('x'), ctx());
    assert.equal(r.ruleId, 'bad3');
    assert.equal(r.notify, false);
    assert.deepEqual(r.actions, []);
  });
});

describe('conditions', () => {
  const c = ctx();
  it('room_member_count operators', () => {
    const m = (is: string, n: number) => conditionMatches({ kind: 'room_member_count', is }, msg('x'), ctx({ roomMemberCount: n }));
    assert.equal(m('2', 2), true);
    assert.equal(m('2', 3), false);
    assert.equal(m('==2', 2), true);
    assert.equal(m('<10', 9), true);
    assert.equal(m('<10', 10), false);
    assert.equal(m('<=10', 10), true);
    assert.equal(m('>2', 3), true);
    assert.equal(m('>2', 2), false);
    assert.equal(m('>=2', 2), true);
    assert.equal(m('>=2', 1), false);
    for (const bad of ['', 'two', '=2', '<>2', '2.5', '-1', ' 2', '=<2']) assert.equal(m(bad, 2), false, bad);
  });

  it('event_match on non-string or absent values never matches, even with *', () => {
    const e = ev('m.room.message', { body: 'x', n: 1, b: true, nul: null, o: {} });
    for (const key of ['content.n', 'content.b', 'content.nul', 'content.o', 'content.missing', 'unsigned.age']) {
      assert.equal(conditionMatches({ kind: 'event_match', key, pattern: '*' }, e, c), false, key);
    }
    assert.equal(conditionMatches({ kind: 'event_match', key: 'content.body', pattern: '*' }, e, c), true);
    assert.equal(conditionMatches({ kind: 'event_match', key: 'type' }, e, c), false);
  });

  it('event_match follows the spec topic example', () => {
    const topic = (t: unknown) =>
      conditionMatches({ kind: 'event_match', key: 'content.topic', pattern: 'lunc?*' }, ev('m.room.topic', { topic: t }, { state_key: '' }), c);
    assert.equal(topic('Lunch plans'), true);
    assert.equal(topic('LUNCH'), true);
    assert.equal(topic(' lunch'), false);
    assert.equal(topic('lunc'), false);
    assert.equal(topic(null), false);
  });

  it('event_match on content.body follows the spec example (word boundaries)', () => {
    const body = (b: string) =>
      conditionMatches({ kind: 'event_match', key: 'content.body', pattern: 'ex*ple' }, msg(b), c);
    assert.equal(body('An example event.'), true);
    assert.equal(body('exple'), true);
    assert.equal(body('An exciting triple-whammy'), true);
    assert.equal(body('An examples event'), false);
    assert.equal(body('Anexample event'), false);
  });

  it('event_property_is: exact, typed, scalar only', () => {
    const e = ev('m.room.create', { 'm.federate': true, room_version: '11', n: 5, f: 1.5, nul: null, arr: [1] }, { state_key: '' });
    const is = (key: string, value: string | number | boolean | null) => conditionMatches({ kind: 'event_property_is', key, value }, e, c);
    assert.equal(is('content.m\\.federate', true), true);
    assert.equal(is('content.m\\.federate', 'true'), false);
    assert.equal(is('content.m\\.federate', 1), false);
    assert.equal(is('content.room_version', '11'), true);
    assert.equal(is('content.n', 5), true);
    assert.equal(is('content.f', 1.5), false);
    assert.equal(is('content.nul', null), true);
    assert.equal(is('content.missing', null), false);
    assert.equal(is('state_key', ''), true);
    assert.equal(conditionMatches({ kind: 'event_property_is', key: 'content.arr' }, e, c), false);
  });

  it('event_property_contains: exact element match in arrays only', () => {
    const e = ev('m.room.canonical_alias', { alias: '#a:x', alt_aliases: ['#somewhere:example.org', '#myroom:example.com', 7, null, { x: 1 }] }, { state_key: '' });
    const has = (key: string, value: string | number | boolean | null) => conditionMatches({ kind: 'event_property_contains', key, value }, e, c);
    assert.equal(has('content.alt_aliases', '#myroom:example.com'), true);
    assert.equal(has('content.alt_aliases', ':example.com'), false);
    assert.equal(has('content.alt_aliases', '#MYROOM:example.com'), false);
    assert.equal(has('content.alt_aliases', 7), true);
    assert.equal(has('content.alt_aliases', '7'), false);
    assert.equal(has('content.alt_aliases', null), true);
    assert.equal(has('content.alias', '#a:x'), false);
  });

  it('contains_display_name matches whole words, case-insensitively, literally', () => {
    const dn = (body: string, displayName?: string) =>
      conditionMatches({ kind: 'contains_display_name' }, msg(body), ctx({ displayName }));
    assert.equal(dn('hey alice!', 'Alice'), true);
    assert.equal(dn('hey Alice', 'Alice'), true);
    assert.equal(dn('malice aforethought', 'Alice'), false);
    assert.equal(dn('alice_b', 'Alice'), false);
    assert.equal(dn('hi a*b', 'a*b'), true);
    assert.equal(dn('hi axxb', 'a*b'), false, 'display names are not globs');
    assert.equal(dn('ping (bob)', '(bob)'), true);
    assert.equal(dn('hello', ''), false);
    assert.equal(dn('hello', undefined), false);
  });

  it('sender_notification_permission', () => {
    const snp = (level: number, levels: Record<string, number>, key = 'room') =>
      conditionMatches({ kind: 'sender_notification_permission', key }, msg('x'), ctx({ senderPowerLevel: level, notificationPowerLevels: levels }));
    assert.equal(snp(50, {}), true);
    assert.equal(snp(49, {}), false);
    assert.equal(snp(10, { room: 10 }), true);
    assert.equal(snp(100, { room: 101 }), false);
    assert.equal(snp(0, { toString: 0 } as Record<string, number>, 'toString'), true);
    assert.equal(snp(49, {}, 'constructor'), false, 'prototype keys are not levels');
    assert.equal(conditionMatches({ kind: 'sender_notification_permission' }, msg('x'), ctx({ senderPowerLevel: 100 })), false);
  });
});

describe('glob matching', () => {
  it('whole-value: * and ?', () => {
    assert.equal(globMatch('m.room.*', 'm.room.message', false), true);
    assert.equal(globMatch('m.room.*', 'm.room.', false), true);
    assert.equal(globMatch('m.room.*', 'xm.room.message', false), false);
    assert.equal(globMatch('*', '', false), true);
    assert.equal(globMatch('', '', false), true);
    assert.equal(globMatch('', 'a', false), false);
    assert.equal(globMatch('?', '', false), false);
    assert.equal(globMatch('?', 'a', false), true);
    assert.equal(globMatch('?', 'ab', false), false);
    assert.equal(globMatch('??', 'ab', false), true);
    assert.equal(globMatch('a*b*c', 'abc', false), true);
    assert.equal(globMatch('a*b*c', 'aXbYc', false), true);
    assert.equal(globMatch('a*b*c', 'aXbYcd', false), false);
    assert.equal(globMatch('a*bc*bc', 'abcbc', false), true);
    assert.equal(globMatch('a*bc*bc', 'abc', false), false);
    assert.equal(globMatch('*a', 'aaa', false), true);
    assert.equal(globMatch('ab*ba', 'aba', false), false, 'segments may not overlap');
    assert.equal(globMatch('a**b', 'ab', false), true);
    assert.equal(globMatch('*?*', '', false), false);
    assert.equal(globMatch('*?*', 'x', false), true);
  });

  it('whole-value: case-insensitive, other characters literal', () => {
    assert.equal(globMatch('M.ROOM.MESSAGE', 'm.room.message', false), true);
    assert.equal(globMatch('m.room.message', 'm.room.messagE', false), true);
    assert.equal(globMatch('m.room.message', 'mxroomxmessage', false), false, '. is literal');
    assert.equal(globMatch('m.room.*', 'mxroomxmessage', false), false);
    assert.equal(globMatch('[ab]', 'a', false), false, 'brackets are literal');
    assert.equal(globMatch('[ab]', '[AB]', false), true);
    assert.equal(globMatch('a+b', 'aab', false), false);
    assert.equal(globMatch('a+*', 'a+b', false), true);
    assert.equal(globMatch('(x|y)$^\\', '(X|Y)$^\\', false), true);
    assert.equal(globMatch('Ünïcode', 'üNÏCODE', false), true);
    assert.equal(globMatch('k', '\u212a', false), false, 'Kelvin sign is not ASCII k');
    assert.equal(globMatch('m@', 'M@', false), true);
    assert.equal(globMatch('m@', 'm`', false), false, '@ and ` differ only in bit 0x20');
    assert.equal(globMatch('a\nb', 'A\nB', false), true);
    assert.equal(globMatch('a*b', 'a\n\nb', false), true, '* spans newlines');
  });

  it('? matches one code point', () => {
    assert.equal(globMatch('?', '😀', false), true);
    assert.equal(globMatch('a?b', 'a😀b', false), true);
    assert.equal(globMatch('??', '😀', false), false);
    assert.equal(globMatch('*??', '😀', false), false);
    assert.equal(globMatch('*?', 'a😀', false), true);
    assert.equal(globMatch('??', '😀😀', false), true);
    assert.equal(globMatch('?', '\ud800', false), true, 'lone surrogates count as one');
    assert.equal(globMatch('x?y', 'x😀 y', true), false);
    assert.equal(globMatch('x?y', 'a x😀y b', true), true);
  });

  it('word-boundary (content.body) matching', () => {
    const w = (p: string, v: string) => globMatch(p, v, true);
    assert.equal(w('cake', 'cake'), true);
    assert.equal(w('cake', 'I want cake.'), true);
    assert.equal(w('cake', 'CAKE!!'), true);
    assert.equal(w('cake', 'cakes'), false);
    assert.equal(w('cake', 'pancake'), false);
    assert.equal(w('cake', 'cake_'), false, '_ is a word character');
    assert.equal(w('cake', 'cake9'), false);
    assert.equal(w('cake', 'café cake'), true);
    assert.equal(w('caf', 'café'), true, 'non-ASCII letters are word boundaries');
    assert.equal(w('cake*lie', 'the cake is a lie'), true);
    assert.equal(w('cake*lie', 'the cake is a lie!'), true);
    assert.equal(w('cake*lie', 'the cake is a lier'), false);
    assert.equal(w('cake*lie', 'the cake is a lie or a lier'), true);
    assert.equal(w('cake*lie', 'pancake is a lie'), false);
    assert.equal(w('cake*lie', 'pancake and cake is a lie'), true);
    assert.equal(w('*cake', 'pancake'), true, 'leading * reaches the start');
    assert.equal(w('cake*', 'cakes'), true, 'trailing * reaches the end');
    assert.equal(w('c?ke', 'cöke'), true);
    assert.equal(w('@room', 'hey @room'), true);
    assert.equal(w('@room', 'hey @roomy'), false);
    assert.equal(w('a*b*c', 'xx a 1 b 2 c yy'), true);
    assert.equal(w('a*b*c', 'xx a 1 b 2 cy'), false);
    assert.equal(w('a*b*c', 'xx a 1 b 2 cy c'), true);
  });

  it('pathological patterns stay fast', () => {
    const long = 'a'.repeat(20000);
    const start = Date.now();
    assert.equal(globMatch('*a*a*a*a*a*a*a*a*a*a*b', long, false), false);
    assert.equal(globMatch('*a*a*a*a*a*a*a*a*a*a*b', long, true), false);
    assert.equal(globMatch('a*a*a*a*a*a*a*a*a*a*a*a*a*b*', long + ' ' + long, true), false);
    assert.ok(Date.now() - start < 1000, `took ${Date.now() - start}ms`);
  });

  it('many distinct patterns do not grow the cache without bound', () => {
    for (let i = 0; i < 5000; i++) assert.equal(globMatch(`p${i}*`, `p${i}x`, false), true);
    assert.equal(globMatch('p1*', 'p1', false), true);
  });
});

describe('dot-separated property paths', () => {
  it('parses escapes', () => {
    assert.deepEqual(parseKeyPath('content.body'), ['content', 'body']);
    assert.deepEqual(parseKeyPath('content.m\\.relates_to.rel_type'), ['content', 'm.relates_to', 'rel_type']);
    assert.deepEqual(parseKeyPath('content.m\\\\foo'), ['content', 'm\\foo']);
    assert.deepEqual(parseKeyPath('content.m\\xfoo'), ['content', 'm\\xfoo']);
    assert.deepEqual(parseKeyPath('a\\\\.b'), ['a\\', 'b']);
    assert.deepEqual(parseKeyPath('type'), ['type']);
    assert.deepEqual(parseKeyPath('trail\\'), ['trail\\']);
  });

  it('resolves own properties of objects only', () => {
    const e = ev('m.room.message', {
      'm.relates_to': { rel_type: 'm.thread' },
      'm\\foo': 'backslash',
      m: { relates_to: { rel_type: 'nested' } },
      list: [{ a: 1 }],
    });
    assert.equal(resolveEventPath(e, 'content.m\\.relates_to.rel_type'), 'm.thread');
    assert.equal(resolveEventPath(e, 'content.m.relates_to.rel_type'), 'nested');
    assert.equal(resolveEventPath(e, 'content.m\\\\foo'), 'backslash');
    assert.equal(resolveEventPath(e, 'content.list.0.a'), undefined);
    assert.equal(resolveEventPath(e, 'content.toString'), undefined);
    assert.equal(resolveEventPath(e, 'content.__proto__'), undefined);
    assert.equal(resolveEventPath(e, 'sender'), BOB);
    assert.equal(resolveEventPath(e, 'content.body.length'), undefined);
  });
});

describe('rule editing', () => {
  const body = { actions: ['notify'] };
  const ids = (u: UserPushRules, kind: 'override' | 'content' | 'underride' | 'room' | 'sender') => u[kind].map((r) => r.rule_id);

  it('validates kinds and rule ids', () => {
    assert.equal(validateKind('override'), true);
    assert.equal(validateKind('global'), false);
    assert.equal(validateKind('__proto__'), false);
    assert.equal(validateRuleId('nocake').ok, true);
    const dot = validateRuleId('.m.rule.mine');
    assert.equal(dot.ok, false);
    assert.equal(!dot.ok && dot.reason, 'reserved_rule_id');
    assert.equal(validateRuleId('a/b').ok, false);
    assert.equal(validateRuleId('a\\b').ok, false);
    assert.equal(validateRuleId('').ok, false);
  });

  it('rejects rules starting with ".", bad kinds and bad bodies', () => {
    const u = emptyUserPushRules();
    const dot = insertUserRule(u, 'override', '.m.rule.master', body);
    assert.equal(dot.ok, false);
    assert.equal(!dot.ok && dot.status, 400);
    const kind = insertUserRule(u, 'global', 'x', body);
    assert.equal(!kind.ok && kind.reason, 'invalid_kind');
    const noPattern = insertUserRule(u, 'content', 'x', body);
    assert.equal(!noPattern.ok && noPattern.errcode, 'M_MISSING_PARAM');
    const badActions = insertUserRule(u, 'override', 'x', { actions: 'notify' } as never);
    assert.equal(badActions.ok, false);
    const badAction = insertUserRule(u, 'override', 'x', { actions: [42] } as never);
    assert.equal(badAction.ok, false);
    const badCond = insertUserRule(u, 'override', 'x', { actions: [], conditions: [{ key: 'type' }] } as never);
    assert.equal(badCond.ok, false);
  });

  it('new rules are enabled, most important first, with kind-specific fields', () => {
    let u = emptyUserPushRules();
    u = unwrap(insertUserRule(u, 'content', 'one', { pattern: 'one', actions: ['notify'], conditions: [{ kind: 'x' }] }));
    u = unwrap(insertUserRule(u, 'content', 'two', { pattern: 'two', actions: ['notify', 'dont_notify'] }));
    assert.deepEqual(ids(u, 'content'), ['two', 'one']);
    assert.deepEqual(u.content[0], { rule_id: 'two', default: false, enabled: true, actions: ['notify'], pattern: 'two' });
    assert.equal(u.content[1]!.conditions, undefined);
    u = unwrap(insertUserRule(u, 'room', ROOM, { actions: [], pattern: 'x' }));
    assert.deepEqual(u.room[0], { rule_id: ROOM, default: false, enabled: true, actions: [] });
    u = unwrap(insertUserRule(u, 'override', 'o', { actions: [] }));
    assert.deepEqual(u.override[0]!.conditions, []);
  });

  it('before/after anchors', () => {
    let u = emptyUserPushRules();
    for (const id of ['c', 'b', 'a']) u = unwrap(insertUserRule(u, 'underride', id, body));
    assert.deepEqual(ids(u, 'underride'), ['a', 'b', 'c']);
    u = unwrap(insertUserRule(u, 'underride', 'x', body, { before: 'b' }));
    assert.deepEqual(ids(u, 'underride'), ['a', 'x', 'b', 'c']);
    u = unwrap(insertUserRule(u, 'underride', 'y', body, { after: 'c' }));
    assert.deepEqual(ids(u, 'underride'), ['a', 'x', 'b', 'c', 'y']);
    u = unwrap(insertUserRule(u, 'underride', 'z', body, { after: 'a' }));
    assert.deepEqual(ids(u, 'underride'), ['a', 'z', 'x', 'b', 'c', 'y']);
    // Moving an existing rule.
    u = unwrap(insertUserRule(u, 'underride', 'a', body, { after: 'y' }));
    assert.deepEqual(ids(u, 'underride'), ['z', 'x', 'b', 'c', 'y', 'a']);
    // before wins when both are given.
    u = unwrap(insertUserRule(u, 'underride', 'w', body, { before: 'c', after: 'z' }));
    assert.deepEqual(ids(u, 'underride'), ['z', 'x', 'b', 'w', 'c', 'y', 'a']);
  });

  it('rejects unknown anchors and anchors on server-default rules', () => {
    let u = unwrap(insertUserRule(emptyUserPushRules(), 'override', 'a', body));
    const unknown = insertUserRule(u, 'override', 'x', body, { before: 'nope' });
    assert.equal(unknown.ok, false);
    assert.equal(!unknown.ok && unknown.reason, 'unknown_anchor');
    assert.equal(!unknown.ok && unknown.errcode, 'M_UNKNOWN');
    assert.equal(!unknown.ok && unknown.error, 'before/after rule not found: nope');
    const otherKind = insertUserRule(u, 'underride', 'x', body, { after: 'a' });
    assert.equal(!otherKind.ok && otherKind.reason, 'unknown_anchor');
    const dflt = insertUserRule(u, 'override', 'x', body, { after: '.m.rule.master' });
    assert.equal(!dflt.ok && dflt.reason, 'default_anchor');
    const self = insertUserRule(u, 'override', 'a', body, { before: 'a' });
    assert.equal(!self.ok && self.reason, 'unknown_anchor');
    const badAfter = insertUserRule(u, 'override', 'x', body, { before: 'a', after: 'nope' });
    assert.equal(badAfter.ok, false);
    u = unwrap(insertUserRule(u, 'override', 'x', body, { before: 'a' }));
    assert.deepEqual(ids(u, 'override'), ['x', 'a']);
  });

  it('updating keeps position and enabled state', () => {
    let u = emptyUserPushRules();
    for (const id of ['c', 'b', 'a']) u = unwrap(insertUserRule(u, 'override', id, body));
    u = unwrap(setEnabled(u, 'override', 'b', false));
    u = unwrap(insertUserRule(u, 'override', 'b', { actions: [], conditions: [{ kind: 'event_match', key: 'type', pattern: 'x' }] }));
    assert.deepEqual(ids(u, 'override'), ['a', 'b', 'c']);
    assert.deepEqual(u.override[1], {
      rule_id: 'b',
      default: false,
      enabled: false,
      actions: [],
      conditions: [{ kind: 'event_match', key: 'type', pattern: 'x' }],
    });
  });

  it('does not mutate its input', () => {
    const u = unwrap(insertUserRule(emptyUserPushRules(), 'override', 'a', body));
    const snapshot = JSON.stringify(u);
    insertUserRule(u, 'override', 'b', body, { before: 'a' });
    setEnabled(u, 'override', 'a', false);
    setActions(u, 'override', 'a', []);
    setEnabled(u, 'override', '.m.rule.master', true);
    deleteUserRule(u, 'override', 'a');
    assert.equal(JSON.stringify(u), snapshot);
  });

  it('setEnabled / setActions on user rules and server defaults', () => {
    let u = unwrap(insertUserRule(emptyUserPushRules(), 'sender', BOB, body));
    u = unwrap(setActions(u, 'sender', BOB, ['notify', { set_tweak: 'sound', value: 'bob.wav' }, 'coalesce']));
    assert.deepEqual(u.sender[0]!.actions, ['notify', { set_tweak: 'sound', value: 'bob.wav' }]);
    u = unwrap(setEnabled(u, 'sender', BOB, false));
    assert.equal(u.sender[0]!.enabled, false);

    u = unwrap(setActions(u, 'underride', '.m.rule.message', ['notify', { set_tweak: 'sound', value: 'default' }]));
    u = unwrap(setEnabled(u, 'override', '.m.rule.reaction', false));
    const merged = mergeWithDefaults(u, ME);
    assert.deepEqual(findRule(merged, 'underride', '.m.rule.message')!.actions, ['notify', { set_tweak: 'sound', value: 'default' }]);
    assert.equal(findRule(merged, 'override', '.m.rule.reaction')!.enabled, false);
    assert.equal(findRule(merged, 'override', '.m.rule.reaction')!.default, true);
    assert.equal(evaluatePushRules(merged, msg('hi'), ctx()).sound, 'default');

    // Restoring the default value forgets the change.
    u = unwrap(setEnabled(u, 'override', '.m.rule.reaction', true));
    u = unwrap(setActions(u, 'underride', '.m.rule.message', ['notify']));
    assert.equal(u.defaults, undefined);

    for (const r of [
      setEnabled(u, 'override', '.m.rule.nope', true),
      setEnabled(u, 'underride', '.m.rule.master', true),
      setEnabled(u, 'override', 'missing', true),
      setActions(u, 'content', '.m.rule.contains_user_name', []),
      setActions(u, 'room', '!missing:x', []),
    ]) {
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.status, 404);
      assert.equal(!r.ok && r.errcode, 'M_NOT_FOUND');
    }
    assert.equal(setActions(u, 'sender', BOB, [null] as never).ok, false);
  });

  it('deletes user rules but never server defaults', () => {
    let u = emptyUserPushRules();
    for (const id of ['b', 'a']) u = unwrap(insertUserRule(u, 'override', id, body));
    u = unwrap(deleteUserRule(u, 'override', 'a'));
    assert.deepEqual(ids(u, 'override'), ['b']);
    const again = deleteUserRule(u, 'override', 'a');
    assert.equal(!again.ok && again.reason, 'not_found');
    const dflt = deleteUserRule(u, 'override', '.m.rule.master');
    assert.equal(dflt.ok, false);
    assert.equal(!dflt.ok && dflt.reason, 'cannot_delete_default');
    const dflt2 = deleteUserRule(u, 'underride', '.m.rule.message');
    assert.equal(!dflt2.ok && dflt2.reason, 'cannot_delete_default');
    assert.equal(deleteUserRule(u, 'nope', 'b').ok, false);
    assert.ok(findRule(mergeWithDefaults(u, ME), 'override', '.m.rule.master'));
  });

  it('mergeWithDefaults: master first, user rules before the other defaults of their kind', () => {
    let u = emptyUserPushRules();
    u = unwrap(insertUserRule(u, 'override', 'o1', body));
    u = unwrap(insertUserRule(u, 'override', 'o2', body, { after: 'o1' }));
    u = unwrap(insertUserRule(u, 'underride', 'u1', body));
    u = unwrap(insertUserRule(u, 'content', 'c1', { pattern: 'x', actions: [] }));
    u = unwrap(insertUserRule(u, 'room', ROOM, body));
    const m = mergeWithDefaults(u, ME);
    assert.deepEqual(m.override.slice(0, 4).map((r) => r.rule_id), ['.m.rule.master', 'o1', 'o2', '.m.rule.suppress_notices']);
    assert.equal(m.override.length, 12);
    assert.deepEqual(m.underride.map((r) => r.rule_id)[0], 'u1');
    assert.equal(m.underride.length, 6);
    assert.deepEqual(m.content.map((r) => r.rule_id), ['c1']);
    assert.deepEqual(m.room.map((r) => r.rule_id), [ROOM]);
    assert.deepEqual(m.sender, []);
    assert.equal('defaults' in m, false);
    assert.deepEqual(mergeWithDefaults(undefined, ME), defaultPushRules(ME));
    // JSON round trip (storage) gives the same result.
    assert.deepEqual(mergeWithDefaults(JSON.parse(JSON.stringify(u)) as UserPushRules, ME), m);
  });

  it('mergeWithDefaults drops stored rules posing as defaults and stale default changes', () => {
    const stored: UserPushRules = {
      override: [{ rule_id: '.m.rule.contains_display_name', default: true, enabled: true, conditions: [], actions: ['notify'] }],
      content: [{ rule_id: '.m.rule.contains_user_name', default: true, enabled: true, pattern: 'alice', actions: ['notify'] }],
      postcontent: [],
      room: [],
      sender: [],
      underride: [],
      defaults: { 'override/.m.rule.roomnotif': { enabled: false }, 'override/.m.rule.master': { enabled: true } },
    };
    const m = mergeWithDefaults(stored, ME);
    assert.equal(findRule(m, 'override', '.m.rule.contains_display_name'), undefined);
    assert.equal(m.content.length, 0);
    assert.equal(m.override[0]!.enabled, true);
    assert.equal(findRule(m, 'bogus', '.m.rule.master'), undefined);
  });
});
