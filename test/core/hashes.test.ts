import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeUnpaddedBase64, encodeUnpaddedBase64Url } from '../../src/core/base64.js';
import { CanonicalJsonError } from '../../src/core/canonical-json.js';
import { checkContentHash, computeContentHash, computeEventId, computeReferenceHash } from '../../src/core/hashes.js';
import { redactPdu } from '../../src/core/redaction.js';
import { getRoomVersion, type RoomVersion } from '../../src/core/room-versions.js';
import type { Pdu } from '../../src/core/types.js';

const V = (id: string): RoomVersion => getRoomVersion(id)!;

// Spec appendices, "Event Signing": the two input events.
function minimalEvent(): Pdu {
  return {
    room_id: '!x:domain',
    sender: '@a:domain',
    origin: 'domain',
    origin_server_ts: 1000000,
    signatures: {},
    hashes: {} as Pdu['hashes'],
    type: 'X',
    content: {},
    prev_events: [],
    auth_events: [],
    depth: 3,
    unsigned: { age_ts: 1000000 },
  };
}

function redactableEvent(): Pdu {
  return {
    content: { body: 'Here is the message content' },
    event_id: '$0:domain',
    origin: 'domain',
    origin_server_ts: 1000000,
    type: 'm.room.message',
    room_id: '!r:domain',
    sender: '@u:domain',
    signatures: {},
    unsigned: { age_ts: 1000000 },
  } as unknown as Pdu;
}

function messageEvent(body: string): Pdu {
  return {
    room_id: '!r:domain',
    sender: '@u:domain',
    type: 'm.room.message',
    content: { msgtype: 'm.text', body },
    origin_server_ts: 1700000000000,
    depth: 10,
    prev_events: ['$a'],
    auth_events: ['$b', '$c'],
    hashes: { sha256: '' },
    signatures: {},
  };
}

test('test vector: content hash of the minimal event is 5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos', () => {
  assert.equal(computeContentHash(minimalEvent()), '5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos');
});

test('test vector: content hash of the redactable event is onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g', () => {
  assert.equal(computeContentHash(redactableEvent()), 'onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g');
});

test('content hash leaves out unsigned, signatures and hashes, and covers everything else', () => {
  const e = messageEvent('hi');
  const h = computeContentHash(e);
  assert.equal(computeContentHash({ ...e, unsigned: { age: 1 }, signatures: { s: { 'ed25519:1': 'x' } }, hashes: { sha256: 'y' } }), h);
  assert.notEqual(computeContentHash({ ...e, content: { msgtype: 'm.text', body: 'ho' } }), h);
  assert.notEqual(computeContentHash({ ...e, extra: 1 }), h);
});

test('content hash check accepts the right hash (padded or not) and rejects anything else', () => {
  const e = messageEvent('hi');
  e.hashes = { sha256: computeContentHash(e) };
  assert.ok(checkContentHash(e));
  assert.ok(checkContentHash({ ...e, hashes: { sha256: e.hashes.sha256 + '=' } }));
  assert.ok(!checkContentHash({ ...e, content: { body: 'changed' } }));
  assert.ok(!checkContentHash({ ...e, hashes: { sha256: '!!!' } }));
  assert.ok(!checkContentHash({ ...e, hashes: {} as Pdu['hashes'] }));
  assert.ok(!checkContentHash({ ...e, depth: 1.5 }));
});

test('content hash check fails on a redacted copy, the sign that only the redacted form is known', () => {
  const e = messageEvent('hi');
  e.hashes = { sha256: computeContentHash(e) };
  assert.ok(!checkContentHash(redactPdu(e, V('10'))));
});

test('content hash of an event with a float has no canonical form and throws', () => {
  assert.throws(() => computeContentHash({ ...messageEvent('x'), content: { n: 0.5 } }), CanonicalJsonError);
});

test('reference hash covers the redacted event: a redacted copy keeps its event id', () => {
  for (const id of ['3', '4', '10', '11', '12']) {
    const e = messageEvent('secret');
    e.hashes = { sha256: computeContentHash(e) };
    assert.equal(computeEventId(redactPdu(e, V(id)), V(id)), computeEventId(e, V(id)), `v${id}`);
  }
});

test('reference hash ignores signatures, unsigned and age_ts but not essential fields', () => {
  const e = messageEvent('x');
  e.hashes = { sha256: computeContentHash(e) };
  const h = computeReferenceHash(e, V('10'));
  assert.equal(h.length, 32);
  assert.deepEqual(computeReferenceHash({ ...e, signatures: { s: { 'ed25519:1': 'z' } }, unsigned: { a: 1 }, age_ts: 5 }, V('10')), h);
  assert.notDeepEqual(computeReferenceHash({ ...e, depth: 11 }, V('10')), h);
  assert.notDeepEqual(computeReferenceHash({ ...e, hashes: { sha256: 'other' } }, V('10')), h);
});

test('reference hash follows the version\'s redaction rules (v11 drops top-level origin)', () => {
  const e = { ...messageEvent('x'), origin: 'domain' };
  const without = messageEvent('x');
  assert.notDeepEqual(computeReferenceHash(e, V('10')), computeReferenceHash(without, V('10')));
  assert.deepEqual(computeReferenceHash(e, V('11')), computeReferenceHash(without, V('11')));
});

test('event id v1/v2: the event_id the event carries', () => {
  assert.equal(computeEventId(redactableEvent(), V('1')), '$0:domain');
  assert.equal(computeEventId(redactableEvent(), V('2')), '$0:domain');
  assert.throws(() => computeEventId(minimalEvent(), V('1')));
});

test('event id v3 vs v4: the same reference hash, differing only in Base64 alphabet', () => {
  // Search deterministically for an event whose hash contains both '+' and '/';
  // the varied field must be one the reference hash covers (content is redacted away).
  let e = messageEvent('x');
  let found = false;
  for (let i = 0; i < 1000 && !found; i++) {
    e = { ...messageEvent('x'), origin_server_ts: 1700000000000 + i };
    const std = encodeUnpaddedBase64(computeReferenceHash(e, V('3')));
    found = std.includes('+') && std.includes('/');
  }
  assert.ok(found);
  const v3 = computeEventId(e, V('3'));
  const v4 = computeEventId(e, V('4'));
  assert.notEqual(v3, v4);
  assert.equal(v4, v3.replaceAll('+', '-').replaceAll('/', '_'));
  assert.equal(v3, '$' + encodeUnpaddedBase64(computeReferenceHash(e, V('3'))));
  assert.equal(v4, '$' + encodeUnpaddedBase64Url(computeReferenceHash(e, V('4'))));
  assert.equal(v4.length, 44);
  assert.match(v4, /^\$[A-Za-z0-9_-]{43}$/);
});
