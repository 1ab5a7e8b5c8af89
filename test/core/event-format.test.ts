import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBase64, encodeUnpaddedBase64Url } from '../../src/core/base64.js';
import { canonicalJson, CanonicalJsonError } from '../../src/core/canonical-json.js';
import {
  addEventSignature, finaliseEvent, isEventSignedBy, verifyEventSignatures, type EventDraft, type KeyLookup,
} from '../../src/core/event-format.js';
import { checkContentHash, computeEventId, computeReferenceHash } from '../../src/core/hashes.js';
import { isValidEventId, isValidRoomId } from '../../src/core/ids.js';
import { redactPdu } from '../../src/core/redaction.js';
import { getRoomVersion, type RoomVersion } from '../../src/core/room-versions.js';
import { generateSigningKey, signingKeyFromSeed, type SigningKey } from '../../src/core/signing.js';
import type { Pdu } from '../../src/core/types.js';

const V = (id: string): RoomVersion => getRoomVersion(id)!;
// Spec appendices, "Cryptographic Test Vectors".
const KEY = signingKeyFromSeed('ed25519:1', decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1'));

function lookupFor(keys: Record<string, SigningKey>): KeyLookup {
  return (server, keyId) => (keys[server]?.keyId === keyId ? keys[server]!.publicKey : undefined);
}

function draft(extra: Partial<EventDraft> = {}): EventDraft {
  return {
    room_id: '!r:example.org',
    sender: '@alice:example.org',
    type: 'm.room.message',
    content: { msgtype: 'm.text', body: 'hello' },
    origin_server_ts: 1700000000000,
    depth: 5,
    prev_events: ['$prev'],
    auth_events: ['$auth'],
    ...extra,
  };
}

test('test vector: the minimal event is hashed and signed exactly as the spec shows (v3-v10 rules)', () => {
  const input: EventDraft = {
    room_id: '!x:domain',
    sender: '@a:domain',
    origin: 'domain',
    origin_server_ts: 1000000,
    type: 'X',
    content: {},
    prev_events: [],
    auth_events: [],
    depth: 3,
    unsigned: { age_ts: 1000000 },
  };
  const expected = {
    auth_events: [],
    content: {},
    depth: 3,
    hashes: { sha256: '5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos' },
    origin: 'domain',
    origin_server_ts: 1000000,
    prev_events: [],
    room_id: '!x:domain',
    sender: '@a:domain',
    signatures: {
      domain: {
        'ed25519:1': 'KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg',
      },
    },
    type: 'X',
    unsigned: { age_ts: 1000000 },
  };
  for (const id of ['3', '4', '5', '6', '7', '8', '9', '10']) {
    const { pdu, roomId } = finaliseEvent(input, V(id), 'domain', KEY);
    assert.equal(canonicalJson(pdu), canonicalJson(expected), `v${id}`);
    assert.deepEqual(pdu, expected);
    assert.equal(roomId, '!x:domain');
  }
});

test('test vector: the redactable v1 event keeps its event_id and is signed over its redacted form', () => {
  const input = {
    content: { body: 'Here is the message content' },
    event_id: '$0:domain',
    origin: 'domain',
    origin_server_ts: 1000000,
    type: 'm.room.message',
    room_id: '!r:domain',
    sender: '@u:domain',
    unsigned: { age_ts: 1000000 },
  } as unknown as EventDraft;
  const expected = {
    content: { body: 'Here is the message content' },
    event_id: '$0:domain',
    hashes: { sha256: 'onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g' },
    origin: 'domain',
    origin_server_ts: 1000000,
    type: 'm.room.message',
    room_id: '!r:domain',
    sender: '@u:domain',
    signatures: {
      domain: {
        'ed25519:1': 'Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA',
      },
    },
    unsigned: { age_ts: 1000000 },
  };
  const { pdu, eventId } = finaliseEvent(input, V('1'), 'domain', KEY);
  assert.equal(canonicalJson(pdu), canonicalJson(expected));
  assert.equal(eventId, '$0:domain');
});

test('test vectors verify, and still verify once redacted', () => {
  const lookup = lookupFor({ domain: KEY });
  const input = {
    content: { body: 'Here is the message content' }, event_id: '$0:domain', origin: 'domain',
    origin_server_ts: 1000000, type: 'm.room.message', room_id: '!r:domain', sender: '@u:domain',
  } as unknown as EventDraft;
  const { pdu } = finaliseEvent(input, V('1'), 'domain', KEY);
  assert.deepEqual(verifyEventSignatures(pdu, V('1'), lookup), { ok: true });
  assert.deepEqual(verifyEventSignatures(redactPdu(pdu, V('1')), V('1'), lookup), { ok: true });
});

test('v1/v2 events get $<random>:<server> as event_id, which is hashed and signed', () => {
  for (const id of ['1', '2']) {
    const { pdu, eventId } = finaliseEvent(draft(), V(id), 'example.org', KEY, () => 'abcDEF123');
    assert.equal(eventId, '$abcDEF123:example.org');
    assert.equal(pdu.event_id, eventId);
    assert.ok(checkContentHash(pdu));
    assert.ok(verifyEventSignatures(pdu, V(id), lookupFor({ 'example.org': KEY })).ok);
  }
  const { eventId } = finaliseEvent(draft(), V('1'), 'example.org', KEY);
  assert.ok(isValidEventId(eventId, V('1')));
  assert.notEqual(finaliseEvent(draft(), V('1'), 'example.org', KEY).eventId, eventId);
});

test('v3+ events carry no event_id; their id is the reference hash in the version\'s alphabet', () => {
  for (const id of ['3', '4', '10', '11', '12']) {
    const { pdu, eventId } = finaliseEvent(draft({ event_id: '$ignored:example.org' }), V(id), 'example.org', KEY);
    assert.ok(!('event_id' in pdu), `v${id}`);
    assert.equal(eventId, computeEventId(pdu, V(id)));
    assert.ok(isValidEventId(eventId, V(id)), `v${id}: ${eventId}`);
  }
});

test('v12 m.room.create has no room_id and its room id is ! + the url-safe reference hash', () => {
  const { pdu, eventId, roomId } = finaliseEvent(
    draft({ type: 'm.room.create', state_key: '', content: { room_version: '12' }, prev_events: [], auth_events: [], depth: 1 }),
    V('12'), 'example.org', KEY,
  );
  assert.ok(!('room_id' in pdu));
  assert.equal(roomId, '!' + encodeUnpaddedBase64Url(computeReferenceHash(pdu, V('12'))));
  assert.equal(roomId, '!' + eventId.slice(1));
  assert.ok(isValidRoomId(roomId, V('12')));
  assert.ok(verifyEventSignatures(pdu, V('12'), lookupFor({ 'example.org': KEY })).ok);
});

test('v12 events other than the create keep their room_id and report it', () => {
  const roomId = '!' + 'A'.repeat(43);
  const r = finaliseEvent(draft({ room_id: roomId }), V('12'), 'example.org', KEY);
  assert.equal(r.roomId, roomId);
  assert.equal(r.pdu.room_id, roomId);
});

test('before v12 a create event keeps the room_id it was given', () => {
  const r = finaliseEvent(draft({ type: 'm.room.create', state_key: '', content: { room_version: '11' } }), V('11'), 'example.org', KEY);
  assert.equal(r.roomId, '!r:example.org');
  assert.equal(r.pdu.room_id, '!r:example.org');
});

test('finalising leaves the draft untouched and drops any hashes or signatures it had', () => {
  const d = draft({ hashes: { sha256: 'old' }, signatures: { x: { 'ed25519:1': 'y' } } } as Partial<EventDraft>);
  const before = structuredClone(d);
  const { pdu } = finaliseEvent(d, V('10'), 'example.org', KEY);
  assert.deepEqual(d, before);
  assert.deepEqual(Object.keys(pdu.signatures), ['example.org']);
  assert.ok(checkContentHash(pdu));
});

test('a draft with a float has no canonical form and cannot be finalised', () => {
  assert.throws(() => finaliseEvent(draft({ content: { n: 1.5 } }), V('10'), 'example.org', KEY), CanonicalJsonError);
});

test('signature verification: the sender\'s server must sign with a known key', () => {
  const { pdu } = finaliseEvent(draft(), V('10'), 'example.org', KEY);
  assert.deepEqual(verifyEventSignatures(pdu, V('10'), lookupFor({})), {
    ok: false, reason: 'no known key for the signatures of example.org',
  });
  const other = finaliseEvent(draft({ sender: '@bob:other.org' }), V('10'), 'example.org', KEY).pdu;
  assert.deepEqual(verifyEventSignatures(other, V('10'), lookupFor({ 'example.org': KEY })), {
    ok: false, reason: 'not signed by other.org',
  });
});

test('signature verification: changing an essential field breaks it, changing redactable content does not', () => {
  const lookup = lookupFor({ 'example.org': KEY });
  const { pdu } = finaliseEvent(draft(), V('10'), 'example.org', KEY);
  assert.equal(verifyEventSignatures({ ...pdu, depth: 6 }, V('10'), lookup).ok, false);
  assert.equal(verifyEventSignatures({ ...pdu, type: 'm.room.topic' }, V('10'), lookup).ok, false);
  const edited = { ...pdu, content: { body: 'other' } };
  assert.equal(verifyEventSignatures(edited, V('10'), lookup).ok, true);
  assert.equal(checkContentHash(edited), false);
});

test('signature verification: a wrong key for a known key id fails; unknown algorithms are skipped', () => {
  const imposter = signingKeyFromSeed('ed25519:1', new Uint8Array(32).fill(7));
  const { pdu } = finaliseEvent(draft(), V('10'), 'example.org', imposter);
  const r = verifyEventSignatures(pdu, V('10'), lookupFor({ 'example.org': KEY }));
  assert.deepEqual(r, { ok: false, reason: 'invalid signature from example.org with ed25519:1' });
  const good = finaliseEvent(draft(), V('10'), 'example.org', KEY).pdu;
  good.signatures['example.org']!['future:1'] = 'whatever';
  assert.ok(verifyEventSignatures(good, V('10'), lookupFor({ 'example.org': KEY })).ok);
});

test('signature verification v1/v2: the event id\'s server must sign too when it differs from the sender\'s', () => {
  const keyB = generateSigningKey('b');
  const lookup = lookupFor({ 'a.org': KEY, 'b.org': keyB });
  const { pdu } = finaliseEvent(draft({ sender: '@u:a.org', event_id: '$x:b.org' }), V('1'), 'a.org', KEY);
  assert.deepEqual(verifyEventSignatures(pdu, V('1'), lookup), { ok: false, reason: 'not signed by b.org' });
  const both = addEventSignature(pdu, V('1'), 'b.org', keyB);
  assert.deepEqual(verifyEventSignatures(both, V('1'), lookup), { ok: true });
  // From v3 there is no event id server to ask for.
  const v3 = finaliseEvent(draft({ sender: '@u:a.org' }), V('3'), 'a.org', KEY).pdu;
  assert.ok(verifyEventSignatures(v3, V('3'), lookup).ok);
});

test('a third-party invite may be signed by a server other than the sender\'s', () => {
  const keyB = generateSigningKey('b');
  const lookup = lookupFor({ 'a.org': KEY, 'b.org': keyB });
  const invite = draft({
    sender: '@u:a.org', type: 'm.room.member', state_key: '@v:b.org',
    content: { membership: 'invite', third_party_invite: { display_name: 'v', signed: { mxid: '@v:b.org', token: 't', signatures: {} } } },
  });
  const { pdu } = finaliseEvent(invite, V('10'), 'b.org', keyB);
  assert.deepEqual(verifyEventSignatures(pdu, V('10'), lookup), { ok: true });
  assert.equal(verifyEventSignatures(pdu, V('10'), lookupFor({})).ok, false);
});

test('addEventSignature keeps existing signatures; isEventSignedBy checks any one server', () => {
  const keyB = generateSigningKey('b');
  const lookup = lookupFor({ 'example.org': KEY, 'b.org': keyB });
  const { pdu } = finaliseEvent(draft(), V('11'), 'example.org', KEY);
  const both: Pdu = addEventSignature(pdu, V('11'), 'b.org', keyB);
  assert.ok(both.signatures['example.org']!['ed25519:1']);
  assert.ok(isEventSignedBy(both, V('11'), 'b.org', lookup));
  assert.ok(isEventSignedBy(both, V('11'), 'example.org', lookup));
  assert.ok(!isEventSignedBy(pdu, V('11'), 'b.org', lookup));
  assert.equal(computeEventId(both, V('11')), computeEventId(pdu, V('11')));
});
