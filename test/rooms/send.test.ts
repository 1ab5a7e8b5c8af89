import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, join, messages, putState, send, sendText, txn } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;
let alice2: TestUser;
let bob: TestUser;
let roomId: string;

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('sd_alice');
  // A second device of the same user.
  const login = await server.request('POST', `${C}/login`, {
    body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'sd_alice' }, password: alice.password },
  });
  alice2 = { ...alice, accessToken: login.body.access_token, deviceId: login.body.device_id };
  bob = await server.registerUser('sd_bob');
  roomId = await createRoom(server, alice, { preset: 'public_chat' });
  expectStatus(await join(server, bob, roomId), 200);
});
after(async () => {
  await server.stop();
});

async function getEvent(user: TestUser, eventId: string) {
  return server.request('GET', `${C}/rooms/${e(roomId)}/event/${e(eventId)}`, { token: user.accessToken });
}

describe('PUT /send (transaction ids)', () => {
  test('the same transaction id from the same device answers the same event, once', async () => {
    const id = txn();
    const first = await send(server, alice, roomId, { msgtype: 'm.text', body: 'once' }, 'm.room.message', id);
    const again = await send(server, alice, roomId, { msgtype: 'm.text', body: 'once' }, 'm.room.message', id);
    assert.equal(again, first);
    const other = await send(server, alice2, roomId, { msgtype: 'm.text', body: 'once' }, 'm.room.message', id);
    assert.notEqual(other, first, 'another device with the same txn id sends a new event');
    const res = await messages(server, alice, roomId, { dir: 'b', limit: 5 });
    assert.equal(res.body.chunk.filter((ev: any) => ev.content.body === 'once').length, 2);
  });

  test('a transaction id is scoped per endpoint: a redaction and a message with the same id are two requests', async () => {
    // Client-server API, "Transaction identifiers": the scope is a single device and a single HTTP endpoint.
    const id = txn();
    const target = await sendText(server, alice, roomId, 'to be redacted');
    const msg = await send(server, alice, roomId, { msgtype: 'm.text', body: 'same txn id' }, 'm.room.message', id);
    const red = await server.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(target)}/${e(id)}`, { token: alice.accessToken, body: {} });
    expectStatus(red, 200);
    assert.notEqual(red.body.event_id, msg, 'the redaction is a new event');
    const got = await getEvent(alice, target);
    assert.deepEqual(got.body.content, {}, 'and it was applied');
    const again = await server.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(target)}/${e(id)}`, { token: alice.accessToken, body: {} });
    assert.equal(again.body.event_id, red.body.event_id, 'a retry of the redaction answers the same event');
  });

  test('concurrent retries of one transaction create one event', async () => {
    const id = txn();
    const ids = await Promise.all(
      Array.from({ length: 5 }, () => send(server, alice, roomId, { msgtype: 'm.text', body: 'racy' }, 'm.room.message', id)),
    );
    assert.equal(new Set(ids).size, 1);
  });

  test('a retry of a transaction answers its event even once the sender could no longer send it', async () => {
    // Client-server API, "Transaction identifiers": a request with a transaction id already used is
    // answered as the first one was. Here the retry comes after the sender left the room, where a new
    // send would be refused (403): the stored event is found before the refusal is answered.
    const other = await createRoom(server, alice, { preset: 'public_chat' });
    expectStatus(await join(server, bob, other), 200);
    const id = txn();
    const first = await send(server, bob, other, { msgtype: 'm.text', body: 'before leaving' }, 'm.room.message', id);
    expectStatus(await server.request('POST', `${C}/rooms/${e(other)}/leave`, { token: bob.accessToken, body: {} }), 200);
    const retry = await server.request('PUT', `${C}/rooms/${e(other)}/send/m.room.message/${e(id)}`, { token: bob.accessToken, body: { msgtype: 'm.text', body: 'before leaving' } });
    expectStatus(retry, 200);
    assert.equal(retry.body.event_id, first);
    expectStatus(await server.request('PUT', `${C}/rooms/${e(other)}/send/m.room.message/${txn()}`, { token: bob.accessToken, body: { body: 'x' } }), 403, 'M_FORBIDDEN');
  });

  test('unsigned.transaction_id is shown only to the sending device', async () => {
    const id = txn();
    const eventId = await send(server, alice, roomId, { msgtype: 'm.text', body: 'txn echo' }, 'm.room.message', id);
    assert.equal((await getEvent(alice, eventId)).body.unsigned.transaction_id, id);
    assert.equal((await getEvent(alice2, eventId)).body.unsigned.transaction_id, undefined);
    assert.equal((await getEvent(bob, eventId)).body.unsigned.transaction_id, undefined);
    assert.equal(typeof (await getEvent(bob, eventId)).body.unsigned.age, 'number');
  });

  test('sending needs membership (403) in a known room (404 otherwise); bodies must be objects', async () => {
    const outsider = await server.registerUser('sd_outsider');
    expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txn()}`, { token: outsider.accessToken, body: { body: 'x' } }), 403, 'M_FORBIDDEN');
    expectStatus(await server.request('PUT', `${C}/rooms/${e('!nope:localhost')}/send/m.room.message/${txn()}`, { token: alice.accessToken, body: { body: 'x' } }), 404, 'M_NOT_FOUND');
    expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txn()}`, { token: alice.accessToken, rawBody: '[1]' }), 400, 'M_BAD_JSON');
    expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txn()}`, { token: alice.accessToken, rawBody: '{oops' }), 400, 'M_NOT_JSON');
  });

  test('events over 64 KiB are M_TOO_LARGE; floats are M_BAD_JSON', async () => {
    expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txn()}`, { token: alice.accessToken, body: { body: 'x'.repeat(70_000) } }), 413, 'M_TOO_LARGE');
    expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txn()}`, { token: alice.accessToken, body: { n: 1.5 } }), 400, 'M_BAD_JSON');
  });

  test('NUL characters are refused per event (M_BAD_JSON) without failing the sends written beside it', async () => {
    expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txn()}`, { token: alice.accessToken, body: { msgtype: 'm.text', body: 'a\u0000b' } }), 400, 'M_BAD_JSON');
    // The text "\u0000" (a backslash and five characters) is ordinary.
    await send(server, alice, roomId, { msgtype: 'm.text', body: 'written as \\u0000' });
    // Sent together, the writes share the room's batches: a member event whose display name would
    // reach a database column with a NUL must fail alone.
    const results = await Promise.all([
      ...Array.from({ length: 4 }, (_, i) => server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txn()}`, { token: bob.accessToken, body: { msgtype: 'm.text', body: `beside ${i}` } })),
      putState(server, alice, roomId, 'm.room.member', alice.userId, { membership: 'join', displayname: 'Al\u0000ice' }),
      ...Array.from({ length: 4 }, (_, i) => server.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txn()}`, { token: bob.accessToken, body: { msgtype: 'm.text', body: `after ${i}` } })),
    ]);
    expectStatus(results[4]!, 400, 'M_BAD_JSON');
    for (const [i, r] of results.entries()) if (i !== 4) expectStatus(r, 200);
  });

  test('events_default in power levels gates messages', async () => {
    const quiet = await createRoom(server, alice, { preset: 'public_chat', power_level_content_override: { events_default: 10 } });
    expectStatus(await join(server, bob, quiet), 200);
    expectStatus(await server.request('PUT', `${C}/rooms/${e(quiet)}/send/m.room.message/${txn()}`, { token: bob.accessToken, body: { body: 'x' } }), 403, 'M_FORBIDDEN');
  });
});

describe('room state', () => {
  test('PUT then GET state with and without a state key; format=event; 404 for missing', async () => {
    const put = await putState(server, alice, roomId, 'm.room.topic', '', { topic: 'first' });
    expectStatus(put, 200);
    // Empty state key: the trailing slash is optional.
    const noKey = await server.request('GET', `${C}/rooms/${e(roomId)}/state/m.room.topic`, { token: bob.accessToken });
    expectStatus(noKey, 200);
    assert.deepEqual(noKey.body, { topic: 'first' });
    const slash = await server.request('GET', `${C}/rooms/${e(roomId)}/state/m.room.topic/`, { token: bob.accessToken });
    assert.deepEqual(slash.body, { topic: 'first' });
    const put2 = await server.request('PUT', `${C}/rooms/${e(roomId)}/state/m.room.topic`, { token: alice.accessToken, body: { topic: 'second' } });
    expectStatus(put2, 200);
    const full = await server.request('GET', `${C}/rooms/${e(roomId)}/state/m.room.topic/?format=event`, { token: bob.accessToken });
    expectStatus(full, 200);
    assert.equal(full.body.event_id, put2.body.event_id);
    assert.equal(full.body.sender, alice.userId);
    assert.deepEqual(full.body.content, { topic: 'second' });
    assert.deepEqual(full.body.unsigned.prev_content, { topic: 'first' });
    assert.equal(full.body.unsigned.replaces_state, put.body.event_id);

    const keyed = await putState(server, alice, roomId, 'org.example.state', 'some/key', { v: 1 });
    expectStatus(keyed, 200);
    const got = await server.request('GET', `${C}/rooms/${e(roomId)}/state/org.example.state/${e('some/key')}`, { token: bob.accessToken });
    assert.deepEqual(got.body, { v: 1 });
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/state/org.example.missing/`, { token: bob.accessToken }), 404, 'M_NOT_FOUND');
  });

  test('re-sending identical state answers the same event id', async () => {
    const a = await putState(server, alice, roomId, 'org.example.same', '', { same: true });
    const b = await putState(server, alice, roomId, 'org.example.same', '', { same: true });
    expectStatus(b, 200);
    assert.equal(b.body.event_id, a.body.event_id);
  });

  test('state needs state_default (403); a user state key names the sender only', async () => {
    expectStatus(await putState(server, bob, roomId, 'm.room.name', '', { name: 'hijack' }), 403, 'M_FORBIDDEN');
    expectStatus(await putState(server, alice, roomId, 'org.example.user', bob.userId, { x: 1 }), 403, 'M_FORBIDDEN');
    expectStatus(await putState(server, alice, roomId, 'org.example.user', alice.userId, { x: 1 }), 200);
  });

  test('m.room.canonical_alias: invalid aliases are M_INVALID_PARAM, foreign ones M_BAD_ALIAS', async () => {
    expectStatus(await putState(server, alice, roomId, 'm.room.canonical_alias', '', { alias: 'nope' }), 400, 'M_INVALID_PARAM');
    expectStatus(await putState(server, alice, roomId, 'm.room.canonical_alias', '', { alias: '#unmapped:localhost' }), 400, 'M_BAD_ALIAS');
    expectStatus(await server.request('PUT', `${C}/directory/room/${e('#sdmapped:localhost')}`, { token: alice.accessToken, body: { room_id: roomId } }), 200);
    expectStatus(await putState(server, alice, roomId, 'm.room.canonical_alias', '', { alias: '#sdmapped:localhost', alt_aliases: ['#far:elsewhere.example'] }), 200);
  });

  test('GET /state lists the whole current state; outsiders get 403', async () => {
    const res = await server.request('GET', `${C}/rooms/${e(roomId)}/state`, { token: bob.accessToken });
    expectStatus(res, 200);
    const types = new Set(res.body.map((ev: any) => ev.type));
    for (const t of ['m.room.create', 'm.room.power_levels', 'm.room.join_rules', 'm.room.member', 'm.room.topic']) assert.ok(types.has(t), t);
    const outsider = await server.registerUser('sd_outsider2');
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/state`, { token: outsider.accessToken }), 403, 'M_FORBIDDEN');
    expectStatus(await server.request('GET', `${C}/rooms/${e(roomId)}/state/m.room.topic`, { token: outsider.accessToken }), 403, 'M_FORBIDDEN');
  });
});

describe('redaction', () => {
  test('a redacted event is served pruned with unsigned.redacted_because', async () => {
    const eventId = await send(server, bob, roomId, { msgtype: 'm.text', body: 'secret', extra: 'gone' });
    const res = await server.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(eventId)}/${txn()}`, { token: bob.accessToken, body: { reason: 'oops' } });
    expectStatus(res, 200);
    const ev = await getEvent(alice, eventId);
    expectStatus(ev, 200);
    assert.deepEqual(ev.body.content, {});
    assert.equal(ev.body.unsigned.redacted_because.event_id, res.body.event_id);
    assert.equal(ev.body.unsigned.redacted_because.type, 'm.room.redaction');
    assert.equal(ev.body.unsigned.redacted_because.content.reason, 'oops');
    // v12 keeps `redacts` in content; clients also get it at the top level.
    const redaction = await getEvent(alice, res.body.event_id);
    assert.equal(redaction.body.redacts, eventId);
    assert.equal(redaction.body.content.redacts, eventId);
    const page = await messages(server, alice, roomId, { dir: 'b', limit: 3 });
    const inPage = page.body.chunk.find((x: any) => x.event_id === eventId);
    assert.deepEqual(inPage.content, {});
  });

  test('redacting a state event keeps the keys the algorithm protects', async () => {
    const put = await putState(server, alice, roomId, 'm.room.join_rules', '', { join_rule: 'public', junk: 1 });
    expectStatus(put, 200);
    expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(put.body.event_id)}/${txn()}`, { token: alice.accessToken, body: {} }), 200);
    const cur = await server.request('GET', `${C}/rooms/${e(roomId)}/state/m.room.join_rules`, { token: alice.accessToken });
    assert.deepEqual(cur.body, { join_rule: 'public' });
  });

  test('others\' events need the redact level (403); the idempotent txn repeats the redaction id', async () => {
    const eventId = await sendText(server, alice, roomId, 'mine');
    expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(eventId)}/${txn()}`, { token: bob.accessToken, body: {} }), 403, 'M_FORBIDDEN');
    const bobs = await sendText(server, bob, roomId, 'bob\'s');
    const id = txn();
    const r1 = await server.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(bobs)}/${id}`, { token: alice.accessToken, body: {} });
    const r2 = await server.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(bobs)}/${id}`, { token: alice.accessToken, body: {} });
    expectStatus(r1, 200);
    assert.equal(r2.body.event_id, r1.body.event_id);
    assert.deepEqual((await getEvent(bob, bobs)).body.content, {});
  });

  test('m.room.redaction through /send works in a v10 room (redacts moved to the top level)', async () => {
    const old = await createRoom(server, alice, { room_version: '10' });
    const target = await sendText(server, alice, old, 'to go');
    const redaction = await send(server, alice, old, { redacts: target, reason: 'via send' }, 'm.room.redaction');
    const ev = await server.request('GET', `${C}/rooms/${e(old)}/event/${e(redaction)}`, { token: alice.accessToken });
    assert.equal(ev.body.redacts, target);
    assert.equal(ev.body.content.redacts, undefined);
    const gone = await server.request('GET', `${C}/rooms/${e(old)}/event/${e(target)}`, { token: alice.accessToken });
    assert.deepEqual(gone.body.content, {});
    assert.equal(gone.body.unsigned.redacted_because.event_id, redaction);
  });
});
