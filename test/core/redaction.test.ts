import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactClientEvent, redactedView, redactPdu, type ClientEvent } from '../../src/core/redaction.js';
import { getRoomVersion, ROOM_VERSIONS, type RoomVersion } from '../../src/core/room-versions.js';
import type { JsonObject, Pdu } from '../../src/core/types.js';

const V = (id: string): RoomVersion => getRoomVersion(id)!;
const ALL = Object.keys(ROOM_VERSIONS);
const range = (from: number, to: number): string[] => ALL.filter((id) => Number(id) >= from && Number(id) <= to);

function pdu(type: string, content: JsonObject, extra: Record<string, unknown> = {}): Pdu {
  return {
    event_id: '$e:example.org',
    room_id: '!r:example.org',
    sender: '@u:example.org',
    type,
    state_key: '',
    content,
    origin_server_ts: 1,
    depth: 2,
    prev_events: ['$p'],
    auth_events: ['$a'],
    hashes: { sha256: 'h' },
    signatures: { 'example.org': { 'ed25519:1': 's' } },
    unsigned: { age_ts: 1 },
    origin: 'example.org',
    membership: 'join',
    prev_state: [],
    redacts: '$x',
    age_ts: 7,
    junk: 'j',
    ...extra,
  };
}

const contentAfter = (type: string, content: JsonObject, version: string): JsonObject =>
  redactPdu(pdu(type, content), V(version)).content;

test('top level v1-v10: keeps the listed keys incl. origin, membership, prev_state; drops the rest', () => {
  for (const id of range(1, 10)) {
    assert.deepEqual(Object.keys(redactPdu(pdu('m.room.message', {}), V(id))).sort(), [
      'auth_events', 'content', 'depth', 'event_id', 'hashes', 'membership', 'origin', 'origin_server_ts',
      'prev_events', 'prev_state', 'room_id', 'sender', 'signatures', 'state_key', 'type',
    ], `v${id}`);
  }
});

test('top level v11+: origin, membership and prev_state are no longer kept', () => {
  for (const id of range(11, 12)) {
    assert.deepEqual(Object.keys(redactPdu(pdu('m.room.message', {}), V(id))).sort(), [
      'auth_events', 'content', 'depth', 'event_id', 'hashes', 'origin_server_ts',
      'prev_events', 'room_id', 'sender', 'signatures', 'state_key', 'type',
    ], `v${id}`);
  }
});

test('content of other event types is emptied in every version', () => {
  for (const id of ALL) {
    assert.deepEqual(contentAfter('m.room.message', { body: 'x', msgtype: 'm.text' }, id), {});
    assert.deepEqual(contentAfter('m.room.topic', { topic: 't' }, id), {});
  }
});

test('m.room.member keeps membership; join_authorised_via_users_server from v9, not in v8', () => {
  const c = { membership: 'join', displayname: 'U', join_authorised_via_users_server: '@a:b' };
  for (const id of range(1, 8)) assert.deepEqual(contentAfter('m.room.member', c, id), { membership: 'join' }, `v${id}`);
  for (const id of range(9, 12)) {
    assert.deepEqual(contentAfter('m.room.member', c, id), { membership: 'join', join_authorised_via_users_server: '@a:b' }, `v${id}`);
  }
});

test('m.room.member third_party_invite: dropped before v11, reduced to `signed` from v11', () => {
  const signed = { mxid: '@u:example.org', token: 't', signatures: {} };
  const c = { membership: 'invite', third_party_invite: { display_name: 'x', signed } };
  for (const id of range(1, 10)) assert.deepEqual(contentAfter('m.room.member', c, id), { membership: 'invite' }, `v${id}`);
  for (const id of range(11, 12)) {
    assert.deepEqual(contentAfter('m.room.member', c, id), { membership: 'invite', third_party_invite: { signed } }, `v${id}`);
  }
  assert.deepEqual(contentAfter('m.room.member', { membership: 'invite', third_party_invite: { display_name: 'x' } }, '11'), { membership: 'invite' });
});

test('m.room.create keeps only creator before v11, all of its content from v11', () => {
  const c = { creator: '@u:example.org', room_version: '1', 'm.federate': false, predecessor: { room_id: '!o:x' } };
  for (const id of range(1, 10)) assert.deepEqual(contentAfter('m.room.create', c, id), { creator: '@u:example.org' }, `v${id}`);
  for (const id of range(11, 12)) assert.deepEqual(contentAfter('m.room.create', c, id), c, `v${id}`);
});

test('m.room.join_rules keeps join_rule; allow from v8', () => {
  const c = { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: '!s:x' }], other: 1 };
  for (const id of range(1, 7)) assert.deepEqual(contentAfter('m.room.join_rules', c, id), { join_rule: 'restricted' }, `v${id}`);
  for (const id of range(8, 12)) assert.deepEqual(contentAfter('m.room.join_rules', c, id), { join_rule: 'restricted', allow: c.allow }, `v${id}`);
});

test('m.room.power_levels keeps the eight listed keys; invite from v11; notifications never', () => {
  const c = {
    ban: 50, events: { 'm.room.name': 50 }, events_default: 0, invite: 0, kick: 50, redact: 50,
    state_default: 50, users: { '@u:x': 100 }, users_default: 0, notifications: { room: 50 }, other: 1,
  };
  const { invite, notifications, other, ...v1 } = c;
  void notifications; void other;
  for (const id of range(1, 10)) assert.deepEqual(contentAfter('m.room.power_levels', c, id), v1, `v${id}`);
  for (const id of range(11, 12)) assert.deepEqual(contentAfter('m.room.power_levels', c, id), { ...v1, invite }, `v${id}`);
});

test('m.room.aliases keeps aliases in v1-v5 only', () => {
  const c = { aliases: ['#a:x'], other: 1 };
  for (const id of range(1, 5)) assert.deepEqual(contentAfter('m.room.aliases', c, id), { aliases: ['#a:x'] }, `v${id}`);
  for (const id of range(6, 12)) assert.deepEqual(contentAfter('m.room.aliases', c, id), {}, `v${id}`);
});

test('m.room.history_visibility keeps history_visibility in every version', () => {
  for (const id of ALL) {
    assert.deepEqual(contentAfter('m.room.history_visibility', { history_visibility: 'shared', x: 1 }, id), { history_visibility: 'shared' });
  }
});

test('m.room.redaction keeps content.redacts from v11; top-level redacts is never kept', () => {
  for (const id of range(1, 10)) {
    const r = redactPdu(pdu('m.room.redaction', { redacts: '$x', reason: 'spam' }), V(id));
    assert.deepEqual(r.content, {}, `v${id}`);
    assert.equal(r.redacts, undefined);
  }
  for (const id of range(11, 12)) {
    const r = redactPdu(pdu('m.room.redaction', { redacts: '$x', reason: 'spam' }), V(id));
    assert.deepEqual(r.content, { redacts: '$x' }, `v${id}`);
    assert.equal(r.redacts, undefined);
  }
});

test('keys missing from the event are not invented by redaction', () => {
  const e = pdu('m.room.power_levels', { ban: 50 });
  delete (e as Record<string, unknown>)['state_key'];
  const r = redactPdu(e, V('10'));
  assert.deepEqual(r.content, { ban: 50 });
  assert.ok(!('state_key' in r));
});

test('a v12 create event without room_id stays without room_id', () => {
  const e = pdu('m.room.create', { room_version: '12' });
  delete (e as Record<string, unknown>)['room_id'];
  assert.ok(!('room_id' in redactPdu(e, V('12'))));
});

test('redaction is idempotent', () => {
  for (const id of ALL) {
    const once = redactPdu(pdu('m.room.member', { membership: 'join', displayname: 'x', join_authorised_via_users_server: '@a:b' }), V(id));
    assert.deepEqual(redactPdu(once, V(id)), once);
  }
});

test('redactPdu shares nothing with its input; redactedView does not copy', () => {
  const e = pdu('m.room.create', { creator: '@u:x', nested: { a: 1 } });
  const r = redactPdu(e, V('11'));
  (r.content['nested'] as JsonObject)['a'] = 2;
  (r.prev_events as string[]).push('$q');
  assert.deepEqual(e.content['nested'], { a: 1 });
  assert.deepEqual(e.prev_events, ['$p']);
  assert.equal(redactedView(e, V('11')).content, e.content);
});

test('client event: content pruned, envelope and unsigned kept', () => {
  const ev: ClientEvent = {
    event_id: '$e', room_id: '!r:x', sender: '@u:x', type: 'm.room.member', state_key: '@u:x',
    content: { membership: 'join', displayname: 'U' }, origin_server_ts: 5, unsigned: { age: 10 }, extra: 'x',
  };
  const r = redactClientEvent(ev, V('10'));
  assert.deepEqual(r, {
    event_id: '$e', room_id: '!r:x', sender: '@u:x', type: 'm.room.member', state_key: '@u:x',
    content: { membership: 'join' }, origin_server_ts: 5, unsigned: { age: 10 },
  });
  r.unsigned!['age'] = 11;
  assert.deepEqual(ev.unsigned, { age: 10 });
});

test('client event: a v11 redaction keeps content.redacts and the top-level copy servers add', () => {
  const ev: ClientEvent = {
    event_id: '$e', room_id: '!r:x', sender: '@u:x', type: 'm.room.redaction',
    content: { redacts: '$t', reason: 'r' }, redacts: '$t', origin_server_ts: 5,
  };
  assert.deepEqual(redactClientEvent(ev, V('11')), {
    event_id: '$e', room_id: '!r:x', sender: '@u:x', type: 'm.room.redaction', content: { redacts: '$t' }, redacts: '$t', origin_server_ts: 5,
  });
  const old = redactClientEvent(ev, V('10'));
  assert.deepEqual(old.content, {});
  assert.equal(old.redacts, undefined);
});
