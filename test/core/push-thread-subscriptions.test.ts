/**
 * MSC4306's push rules (unstable ids, as clients ask for them): the thread subscription
 * condition, the two server-default rules of kind `postcontent`, where that kind sits in the
 * evaluation order, and the room-wide evaluation that sends a thread's subscribers their own.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPushRules, DEFAULT_RULE_IDS } from '../../src/core/push/default-rules.js';
import { conditionMatches, evaluatePushRules } from '../../src/core/push/evaluator.js';
import type { ClientEventLike, PushContext } from '../../src/core/push/evaluator.js';
import { evaluateForMembers } from '../../src/core/push/room-evaluation.js';
import { emptyUserPushRules, insertUserRule, mergeWithDefaults, setEnabled, type RuleEditResult } from '../../src/core/push/rule-edit.js';
import { PUSH_RULE_KINDS } from '../../src/core/push/types.js';

const ME = '@alice:example.org';
const BOB = '@bob:example.org';
const ROOM = '!room:example.org';
const ROOT = '$root:example.org';
const KIND = 'io.element.msc4306.thread_subscription';

function ctx(over: Partial<PushContext> = {}): PushContext {
  return { userId: ME, roomMemberCount: 5, senderPowerLevel: 0, notificationPowerLevels: {}, ...over };
}
function msg(body: string, content: object = {}): ClientEventLike {
  return { type: 'm.room.message', content: { msgtype: 'm.text', body, ...content }, sender: BOB, room_id: ROOM, event_id: '$e:example.org' };
}
const inThread = (body: string, extra: object = {}) => msg(body, { 'm.relates_to': { rel_type: 'm.thread', event_id: ROOT }, ...extra });
function unwrap<T>(r: RuleEditResult<T>): T {
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

describe('MSC4306 thread subscription push rules', () => {
  it('postcontent sits between content and room and holds the two default rules, in the MSC\'s order and shape', () => {
    assert.deepEqual(PUSH_RULE_KINDS, ['override', 'content', 'postcontent', 'room', 'sender', 'underride']);
    assert.deepEqual(defaultPushRules(ME).postcontent, [
      { rule_id: '.io.element.msc4306.rule.unsubscribed_thread', default: true, enabled: true, conditions: [{ kind: KIND, subscribed: false }], actions: [] },
      {
        rule_id: '.io.element.msc4306.rule.subscribed_thread',
        default: true,
        enabled: true,
        conditions: [{ kind: KIND, subscribed: true }],
        actions: ['notify', { set_tweak: 'sound', value: 'default' }],
      },
    ]);
    assert.ok(DEFAULT_RULE_IDS.postcontent.has('.io.element.msc4306.rule.subscribed_thread'));
  });

  it('the condition holds only for events in a thread, by whether the user is subscribed', () => {
    const sub = { kind: KIND, subscribed: true };
    const unsub = { kind: KIND, subscribed: false };
    assert.equal(conditionMatches(sub, inThread('x'), ctx({ threadSubscribed: true })), true);
    assert.equal(conditionMatches(unsub, inThread('x'), ctx({ threadSubscribed: true })), false);
    assert.equal(conditionMatches(unsub, inThread('x'), ctx()), true, 'no subscription known: not subscribed');
    assert.equal(conditionMatches(sub, inThread('x'), ctx()), false);
    for (const c of [sub, unsub]) {
      assert.equal(conditionMatches(c, msg('main timeline'), ctx({ threadSubscribed: true })), false);
      assert.equal(conditionMatches(c, msg('a reply', { 'm.relates_to': { 'm.in_reply_to': { event_id: ROOT } } }), ctx()), false);
      assert.equal(conditionMatches(c, msg('an edit', { 'm.relates_to': { rel_type: 'm.replace', event_id: ROOT } }), ctx()), false);
    }
    assert.equal(conditionMatches({ kind: KIND, subscribed: 'yes' as never }, inThread('x'), ctx()), false, 'malformed: never');
    assert.equal(conditionMatches({ kind: KIND }, inThread('x'), ctx()), false);
  });

  it('default rules: an unsubscribed thread is quiet unless mentioned; a subscribed one notifies; the main timeline is unchanged', () => {
    const set = defaultPushRules(ME);
    const quiet = evaluatePushRules(set, inThread('chatter'), ctx());
    assert.equal(quiet.ruleId, '.io.element.msc4306.rule.unsubscribed_thread');
    assert.equal(quiet.kind, 'postcontent');
    assert.equal(quiet.notify, false);
    const loud = evaluatePushRules(set, inThread('chatter'), ctx({ threadSubscribed: true }));
    assert.equal(loud.ruleId, '.io.element.msc4306.rule.subscribed_thread');
    assert.deepEqual([loud.notify, loud.highlight, loud.sound], [true, false, 'default']);
    const mention = evaluatePushRules(set, inThread('hey', { 'm.mentions': { user_ids: [ME] } }), ctx());
    assert.equal(mention.ruleId, '.m.rule.is_user_mention');
    assert.equal(mention.highlight, true);
    assert.equal(evaluatePushRules(set, msg('main'), ctx({ threadSubscribed: true })).ruleId, '.m.rule.message');
    assert.equal(evaluatePushRules(set, inThread('notice', { msgtype: 'm.notice' }), ctx({ threadSubscribed: true })).notify, false, 'overrides still win');
  });

  it('content rules come before them and room rules after: a keyword still notifies, a muted room does not silence a subscribed thread', () => {
    let u = emptyUserPushRules();
    u = unwrap(insertUserRule(u, 'content', 'cake', { pattern: 'cake', actions: ['notify', { set_tweak: 'highlight' }] }));
    u = unwrap(insertUserRule(u, 'room', ROOM, { actions: [] }));
    const set = mergeWithDefaults(u, ME);
    assert.equal(evaluatePushRules(set, inThread('cake!'), ctx()).ruleId, 'cake');
    assert.equal(evaluatePushRules(set, inThread('hello'), ctx({ threadSubscribed: true })).notify, true);
    assert.equal(evaluatePushRules(set, msg('hello'), ctx()).ruleId, ROOM);
  });

  it('clients may disable the defaults but not add rules of that kind', () => {
    const off = unwrap(setEnabled(emptyUserPushRules(), 'postcontent', '.io.element.msc4306.rule.unsubscribed_thread', false));
    assert.equal(evaluatePushRules(mergeWithDefaults(off, ME), inThread('chatter'), ctx()).ruleId, '.m.rule.message');
    const added = insertUserRule(emptyUserPushRules(), 'postcontent', 'mine', { actions: ['notify'], conditions: [] });
    assert.equal(added.ok, false);
    assert.equal(!added.ok && added.status, 400);
    assert.equal(!added.ok && added.errcode, 'M_INVALID_PARAM');
    // A document stored before the kind existed still merges and edits.
    const old = { override: [], content: [], room: [], sender: [], underride: [] } as never;
    assert.equal(mergeWithDefaults(old, ME).postcontent.length, 2);
    assert.equal(setEnabled(old, 'postcontent', 'nothing', true).ok, false);
  });

  it('room-wide evaluation: the base is an unsubscribed member\'s outcome; subscribers are exceptions', () => {
    const members = ['@a:example.org', '@b:example.org', '@c:example.org', BOB].map((userId) => ({ userId, rules: null }));
    const shared = { roomMemberCount: 4, senderPowerLevel: 0, notificationPowerLevels: {} };
    const r = evaluateForMembers(inThread('chatter'), shared, members, new Set(['@b:example.org', BOB]));
    assert.equal(r.base.notify, false);
    assert.deepEqual([...r.exceptions.keys()], ['@b:example.org'], 'the sender is never notified');
    assert.equal(r.exceptions.get('@b:example.org')!.ruleId, '.io.element.msc4306.rule.subscribed_thread');
    const main = evaluateForMembers(msg('main'), shared, members, new Set(['@b:example.org']));
    assert.equal(main.base.notify, true);
    assert.equal(main.exceptions.size, 0);
  });

  it('a server may leave the rules out: then thread messages notify as the spec\'s own rules say', () => {
    const without = { threadSubscriptions: false };
    assert.deepEqual(defaultPushRules(ME, without).postcontent, []);
    assert.deepEqual(mergeWithDefaults(null, ME, without).postcontent, []);
    const members = ['@a:example.org', '@b:example.org'].map((userId) => ({ userId, rules: null }));
    const shared = { roomMemberCount: 3, senderPowerLevel: 0, notificationPowerLevels: {} };
    const r = evaluateForMembers(inThread('chatter'), shared, members, new Set(), without);
    assert.equal(r.base.ruleId, '.m.rule.message');
    assert.equal(r.exceptions.size, 0);
  });
});
