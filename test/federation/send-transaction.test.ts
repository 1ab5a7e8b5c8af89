// Inbound PUT /_matrix/federation/v1/send/{txnId}: PDUs built and signed as a.test (a user of
// a.test joining a room made on b.test), sent over real HTTP with X-Matrix by a.test's client.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { SigningKey } from '../../src/core/signing.js';
import { FederationRequestError } from '../../src/federation/client.js';
import { FakeRemote, roomHead, withEntry, type RemoteEvent } from '../helpers/remote-server.js';
import type { TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, messages } from '../rooms/room-helpers.js';
import { F, startPair, type Pair } from './federation-helpers.js';

let pair: Pair;
let alice: TestUser;
let remote: FakeRemote;
let bob: string;
let roomId: string;
let join: RemoteEvent;
let authFrom: Map<string, string>;
let txnCounter = 0;

/** Events signed with a.test's real key, so that b.test verifies them with the key it fetches. */
function asServer(name: string, key: SigningKey): FakeRemote {
  const r = new FakeRemote(name);
  (r as { key: SigningKey }).key = key;
  return r;
}

async function sendTxn(pdus: unknown[], opts: { txnId?: string; edus?: unknown[] } = {}): Promise<{ pdus: Record<string, { error?: string }> }> {
  const txnId = opts.txnId ?? `t${process.pid}_${++txnCounter}`;
  return pair.a.hs.ctx.services.federation.client.request(pair.b.serverName, {
    method: 'PUT',
    path: `${F}/send/${encodeURIComponent(txnId)}`,
    body: { origin: 'a.test', origin_server_ts: Date.now(), pdus, ...(opts.edus ? { edus: opts.edus } : {}) },
  });
}

function message(text: string, prev: RemoteEvent[], sender = bob): RemoteEvent {
  return remote.event(roomId, '10', {
    sender, type: 'm.room.message', content: { msgtype: 'm.text', body: text },
    prev: prev.map((p) => p.eventId), authFrom, depth: Math.max(...prev.map((p) => p.pdu.depth)) + 1,
  });
}

async function bodies(): Promise<string[]> {
  const res = await messages(pair.b, alice, roomId, { dir: 'b', limit: 200 });
  expectStatus(res, 200);
  return res.body.chunk.filter((ev: any) => ev.type === 'm.room.message').map((ev: any) => ev.content.body);
}

before(async () => {
  pair = await startPair();
  alice = await pair.b.registerUser('fed_alice');
  remote = asServer('a.test', pair.a.hs.ctx.signingKey);
  bob = remote.user('bob');
  roomId = await createRoom(pair.b, alice, { preset: 'public_chat', room_version: '10' });
  const h = await roomHead(pair.b, roomId);
  join = remote.event(roomId, '10', { sender: bob, type: 'm.room.member', stateKey: bob, content: { membership: 'join' }, prev: h.extremities, authFrom: h.state, depth: h.depth + 1 });
  authFrom = withEntry(h.state, 'm.room.member', bob, join.eventId);
});
after(async () => {
  await pair.stop();
});

test('a join built and signed by a.test is accepted over /send, with a.test’s key fetched by b.test', async () => {
  const answer = await sendTxn([join.pdu]);
  assert.deepEqual(answer, { pdus: { [join.eventId]: {} } });
  const members = await pair.b.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: alice.accessToken });
  expectStatus(members, 200);
  assert.ok(members.body.joined[bob], 'the user of a.test is a member on b.test');
  const keys = await pair.b.hs.ctx.db.selectFrom('federation_server_keys').select('key_id').where('server_name', '=', 'a.test').execute();
  assert.deepEqual(keys.map((k) => k.key_id), [pair.a.hs.ctx.signingKey.keyId]);
});

test('50 PDUs with a tampered one, a forged one and one for an unknown room: the others are accepted', async () => {
  const good: RemoteEvent[] = [];
  let prev = [join];
  for (let i = 0; i < 46; i++) {
    const m = message(`batch ${i}`, prev);
    good.push(m);
    prev = [m];
  }
  // Signed, then altered: the signature no longer holds.
  const signed = message('tampered', [join]);
  const tampered = { ...signed.pdu, origin_server_ts: signed.pdu.origin_server_ts + 1 };
  // Claims a.test but is signed with another key.
  const forged = asServer('a.test', (new FakeRemote('x')).key).event(roomId, '10', {
    sender: bob, type: 'm.room.message', content: { body: 'forged' }, prev: [join.eventId], authFrom, depth: join.pdu.depth + 1,
  });
  const elsewhere = remote.event('!unknown:a.test', '10', {
    sender: bob, type: 'm.room.message', content: { body: 'nowhere' }, prev: [join.eventId], authFrom, depth: 5,
  });
  // Not an event at all.
  const garbage = { room_id: roomId, type: 42 };
  const pdus = [...good.map((g) => g.pdu), tampered, forged.pdu, elsewhere.pdu, garbage];
  assert.equal(pdus.length, 50);
  const answer = await sendTxn(pdus.reverse());
  for (const g of good) assert.deepEqual(answer.pdus[g.eventId], {}, g.eventId);
  const ids = Object.keys(answer.pdus);
  const errors = ids.filter((id) => answer.pdus[id]!.error !== undefined);
  assert.ok(answer.pdus[forged.eventId]?.error, JSON.stringify(answer.pdus[forged.eventId]));
  assert.match(answer.pdus[forged.eventId]!.error!, /signature/);
  assert.match(answer.pdus[elsewhere.eventId]?.error ?? '', /not known/);
  assert.equal(errors.length, 4, JSON.stringify(errors.map((id) => answer.pdus[id])));
  const got = await bodies();
  assert.equal(got.filter((b) => b.startsWith('batch ')).length, 46);
  assert.ok(!got.includes('tampered') && !got.includes('forged'));
  const forgedRow = await pair.b.hs.ctx.db.selectFrom('events').select('event_id').where('event_id', '=', forged.eventId).executeTakeFirst();
  assert.equal(forgedRow, undefined, 'a badly signed event is not stored');
});

test('a transaction over 50 PDUs or 100 EDUs is refused as a whole', async () => {
  const pdus = Array.from({ length: 51 }, (_, i) => message(`too many ${i}`, [join]).pdu);
  await assert.rejects(sendTxn(pdus), (err: unknown) => err instanceof FederationRequestError && err.status === 400 && err.errcode === 'M_BAD_JSON');
  const edus = Array.from({ length: 101 }, () => ({ edu_type: 'm.typing', content: {} }));
  await assert.rejects(sendTxn([], { edus }), (err: unknown) => err instanceof FederationRequestError && err.status === 400);
  assert.ok(!(await bodies()).some((b) => b.startsWith('too many')));
  // EDUs within the limit are accepted (and ignored for now).
  assert.deepEqual(await sendTxn([], { edus: [{ edu_type: 'm.typing', content: { room_id: roomId, user_id: bob, typing: true } }] }), { pdus: {} });
});

test('a repeated transaction id is answered as before and not processed again', async () => {
  const first = message('first delivery', [join]);
  const answer = await sendTxn([first.pdu], { txnId: 'repeat-me' });
  assert.deepEqual(answer, { pdus: { [first.eventId]: {} } });
  const other = message('never processed', [join]);
  const again = await sendTxn([other.pdu], { txnId: 'repeat-me' });
  assert.deepEqual(again, answer);
  assert.equal(await pair.b.hs.ctx.services.rooms.core.events.get(other.eventId), undefined);
  const got = await bodies();
  assert.ok(got.includes('first delivery') && !got.includes('never processed'));
});

test('answers kept for repeated transactions are dropped after a day, and the younger ones kept', async () => {
  const received = () => pair.b.hs.ctx.db.selectFrom('federation_received_txns').select(['txn_id', 'received_ts']).where('origin', '=', 'a.test').execute();
  await sendTxn([], { txnId: 'old-txn' });
  await sendTxn([], { txnId: 'young-txn' });
  const day = 24 * 3600_000;
  await pair.b.hs.ctx.db.updateTable('federation_received_txns').set((eb) => ({ received_ts: eb('received_ts', '-', day + 60_000) })).where('txn_id', '=', 'old-txn').execute();
  const before = (await received()).length;
  assert.equal(await pair.b.hs.ctx.services.federation.receivedTxnPruner.prune(), 1);
  const left = await received();
  assert.equal(left.length, before - 1);
  assert.ok(left.some((r) => r.txn_id === 'young-txn') && !left.some((r) => r.txn_id === 'old-txn'));
  assert.equal(await pair.b.hs.ctx.services.federation.receivedTxnPruner.prune(), 0, 'nothing more to drop');
  // A transaction id whose answer was dropped is processed as a new one.
  const late = message('after the prune', [join]);
  assert.deepEqual(await sendTxn([late.pdu], { txnId: 'old-txn' }), { pdus: { [late.eventId]: {} } });
});
