// Events made on another server, handed to the inbound path the way federation
// will (spec: server-server-api.md "Checks performed on receipt of a PDU").
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { stateKey } from '../../src/core/types.js';
import { selectBackwardExtremities } from '../../src/rooms/store/edges-table.js';
import { FakeRemote, receive, roomHead, statusOf, withEntry, type RemoteEvent } from '../helpers/remote-server.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, membershipAction, messages, sendText } from './room-helpers.js';

let server: TestServer;
let alice: TestUser;
const remote = new FakeRemote('remote.test');
const bob = remote.user('bob');
const carol = remote.user('carol');

before(async () => {
  server = await startTestServer();
  alice = await server.registerUser('in_alice');
  remote.trustedBy(server);
});
after(async () => {
  await server.stop();
});

async function publicRoom(extra: Record<string, unknown> = {}): Promise<string> {
  return createRoom(server, alice, { preset: 'public_chat', room_version: '10', ...extra });
}

/** A remote user's join on top of the room's current head. */
async function remoteJoin(roomId: string, userId: string): Promise<RemoteEvent> {
  const h = await roomHead(server, roomId);
  return remote.event(roomId, '10', {
    sender: userId,
    type: 'm.room.member',
    stateKey: userId,
    content: { membership: 'join' },
    prev: h.extremities,
    authFrom: h.state,
    depth: h.depth + 1,
  });
}

function message(roomId: string, sender: string, text: string, prev: RemoteEvent[], authFrom: Map<string, string>): RemoteEvent {
  return remote.event(roomId, '10', {
    sender,
    type: 'm.room.message',
    content: { msgtype: 'm.text', body: text },
    prev: prev.map((p) => p.eventId),
    authFrom,
    depth: Math.max(...prev.map((p) => p.pdu.depth)) + 1,
  });
}

async function bodiesBackwards(roomId: string, user: TestUser = alice): Promise<string[]> {
  const out: string[] = [];
  let from: string | undefined;
  for (let i = 0; i < 50; i++) {
    const res = await messages(server, user, roomId, { dir: 'b', limit: 7, ...(from ? { from } : {}) });
    expectStatus(res, 200);
    for (const ev of res.body.chunk) if (ev.type === 'm.room.message') out.push(ev.content.body);
    if (!res.body.end) break;
    from = res.body.end;
  }
  return out;
}

test('a remote join and messages delivered out of order are stored in causal order and served', async () => {
  const roomId = await publicRoom();
  const join = await remoteJoin(roomId, bob);
  const authFrom = withEntry((await roomHead(server, roomId)).state, 'm.room.member', bob, join.eventId);
  const m1 = message(roomId, bob, 'one', [join], authFrom);
  const m2 = message(roomId, bob, 'two', [m1], authFrom);
  const m3 = message(roomId, bob, 'three', [m2], authFrom);

  const results = await receive(server, roomId, { pdus: [m3.pdu, join.pdu, m2.pdu, m1.pdu] });
  for (const ev of [join, m1, m2, m3]) assert.equal(statusOf(results, ev.eventId), 'accepted', JSON.stringify(results));

  assert.deepEqual(await bodiesBackwards(roomId), ['three', 'two', 'one']);
  const members = await server.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: alice.accessToken });
  expectStatus(members, 200);
  assert.ok(members.body.joined[bob], 'the remote user is a member');
  assert.deepEqual((await roomHead(server, roomId)).extremities, [m3.eventId]);
  // A second delivery changes nothing.
  const again = await receive(server, roomId, { pdus: [m2.pdu] });
  assert.equal(statusOf(again, m2.eventId), 'duplicate');
});

test('checks 1-3: invalid and forged events are dropped, a wrong content hash is redacted', async () => {
  const roomId = await publicRoom();
  const join = await remoteJoin(roomId, bob);
  await receive(server, roomId, { pdus: [join.pdu] });
  const authFrom = withEntry((await roomHead(server, roomId)).state, 'm.room.member', bob, join.eventId);

  const forged = message(roomId, bob, 'forged', [join], authFrom);
  const tampered = { ...forged.pdu, origin_server_ts: forged.pdu.origin_server_ts + 1 };
  const impostor = new FakeRemote('remote.test');
  const unknownKey = impostor.event(roomId, '10', { sender: bob, type: 'm.room.message', content: { body: 'x' }, prev: [join.eventId], authFrom, depth: join.pdu.depth + 1 });
  const otherRoom = { ...message(roomId, bob, 'elsewhere', [join], authFrom).pdu, room_id: '!other:remote.test' };
  // Signatures cover the redacted form, which has no message content: altered content keeps them valid.
  const hashed = message(roomId, bob, 'original text', [join], authFrom);
  const wrongHash = { ...hashed.pdu, content: { msgtype: 'm.text', body: 'altered on the way' } };

  // A prev event that exists, but in another room.
  const elsewhere = await sendText(server, alice, await publicRoom(), 'in another room');
  const crossRoom = remote.event(roomId, '10', { sender: bob, type: 'm.room.message', content: { body: 'x' }, prev: [elsewhere], authFrom, depth: join.pdu.depth + 1 });

  const results = await receive(server, roomId, { pdus: [tampered, unknownKey.pdu, otherRoom, { type: 42 }, wrongHash, crossRoom.pdu] });
  const dropped = results.filter((r) => r.status === 'dropped');
  assert.equal(dropped.length, 5, JSON.stringify(results));
  assert.equal(statusOf(results, crossRoom.eventId), 'dropped');
  // The content hash is not covered by the signature: the event goes on, redacted.
  const redacted = results.find((r) => r.status === 'accepted');
  assert.ok(redacted, JSON.stringify(results));
  const got = await server.request('GET', `${C}/rooms/${e(roomId)}/event/${e(redacted.eventId!)}`, { token: alice.accessToken });
  expectStatus(got, 200);
  assert.deepEqual(got.body.content, {}, 'stored redacted');
});

test('a rejected event is kept with its reason but never served, and events authorised by it are rejected too', async () => {
  const roomId = await publicRoom({ preset: 'private_chat' });
  const h = await roomHead(server, roomId);
  // Joining an invite-only room without an invite fails auth against the event's own auth events.
  const join = remote.event(roomId, '10', {
    sender: carol, type: 'm.room.member', stateKey: carol, content: { membership: 'join' }, prev: h.extremities, authFrom: h.state, depth: h.depth + 1,
  });
  const authFrom = withEntry(h.state, 'm.room.member', carol, join.eventId);
  const msg = message(roomId, carol, 'should not be seen', [join], authFrom);
  const results = await receive(server, roomId, { pdus: [join.pdu, msg.pdu] });
  assert.equal(statusOf(results, join.eventId), 'rejected');
  assert.equal(statusOf(results, msg.eventId), 'rejected');
  assert.match(results.find((r) => r.eventId === msg.eventId)!.reason!, /rejected/);

  const row = await server.hs.ctx.db.selectFrom('events').select(['rejected_reason', 'stream_pos']).where('event_id', '=', join.eventId).executeTakeFirstOrThrow();
  assert.ok(row.rejected_reason, 'kept with the reason');
  assert.equal(row.stream_pos, null);
  const got = await server.request('GET', `${C}/rooms/${e(roomId)}/event/${e(join.eventId)}`, { token: alice.accessToken });
  expectStatus(got, 404);
  assert.deepEqual((await roomHead(server, roomId)).extremities, h.extremities, 'never built upon');
  assert.equal((await roomHead(server, roomId)).members.get(carol), undefined);
});

test('an event from a user banned in the current state is soft-failed: stored, not served, not an extremity', async () => {
  const roomId = await publicRoom();
  const join = await remoteJoin(roomId, bob);
  await receive(server, roomId, { pdus: [join.pdu] });
  const authFrom = withEntry((await roomHead(server, roomId)).state, 'm.room.member', bob, join.eventId);
  expectStatus(await membershipAction(server, alice, roomId, 'ban', { user_id: bob, reason: 'spam' }), 200);
  const before = await roomHead(server, roomId);

  // Built by bob's server on the state it knew: valid by its own history.
  const late = message(roomId, bob, 'sent before the ban reached me', [join], authFrom);
  const results = await receive(server, roomId, { pdus: [late.pdu] });
  assert.equal(statusOf(results, late.eventId), 'soft_failed');
  assert.deepEqual((await roomHead(server, roomId)).extremities, before.extremities);
  assert.ok(!(await bodiesBackwards(roomId)).includes('sent before the ban reached me'));
  const row = await server.hs.ctx.db.selectFrom('events').select(['soft_failed']).where('event_id', '=', late.eventId).executeTakeFirstOrThrow();
  assert.equal(Number(row.soft_failed), 1);
});

test('a fork with a ban on one side and a power-level change on the other resolves as state resolution v2 says', async () => {
  // Synapse's "ban vs pl" case: bob (50) changes power levels while carol (100) bans him on another branch.
  const roomId = await publicRoom({
    power_level_content_override: { users: { [alice.userId]: 100, [bob]: 50, [carol]: 100 }, events: { 'm.room.power_levels': 50 } },
  });
  const joinCarol = await remoteJoin(roomId, carol);
  await receive(server, roomId, { pdus: [joinCarol.pdu] });
  const joinBob = await remoteJoin(roomId, bob);
  await receive(server, roomId, { pdus: [joinBob.pdu] });
  const base = await roomHead(server, roomId);
  const pa = base.state.get(stateKey('m.room.power_levels', ''))!;
  const paContent = (await server.hs.ctx.services.rooms.core.events.get(pa))!.pdu.content;

  const pb = remote.event(roomId, '10', {
    sender: bob, type: 'm.room.power_levels', stateKey: '',
    content: { ...paContent, events: { ...(paContent.events as object), 'm.room.topic': 50 } },
    prev: [joinBob.eventId], authFrom: base.state, depth: joinBob.pdu.depth + 1,
  });
  const ban = remote.event(roomId, '10', {
    sender: carol, type: 'm.room.member', stateKey: bob, content: { membership: 'ban' },
    prev: [joinBob.eventId], authFrom: base.state, depth: joinBob.pdu.depth + 1,
  });
  const r1 = await receive(server, roomId, { pdus: [pb.pdu] });
  assert.equal(statusOf(r1, pb.eventId), 'accepted', JSON.stringify(r1));
  const r2 = await receive(server, roomId, { pdus: [ban.pdu] });
  assert.equal(statusOf(r2, ban.eventId), 'accepted', JSON.stringify(r2));

  const after = await roomHead(server, roomId);
  assert.deepEqual(after.extremities, [ban.eventId, pb.eventId].sort(), 'two forward extremities');
  assert.equal(after.state.get(stateKey('m.room.power_levels', '')), pa, 'bob’s change loses: he is banned');
  assert.equal(after.state.get(stateKey('m.room.member', bob)), ban.eventId);
  const pl = await server.request('GET', `${C}/rooms/${e(roomId)}/state/m.room.power_levels`, { token: alice.accessToken });
  assert.equal(pl.body.events?.['m.room.topic'], paContent.events && (paContent.events as Record<string, unknown>)['m.room.topic']);
  const members = await server.request('GET', `${C}/rooms/${e(roomId)}/members`, { token: alice.accessToken });
  assert.equal(members.body.chunk.find((m: any) => m.state_key === bob)?.content.membership, 'ban');

  // A local send now merges the fork.
  await sendText(server, alice, roomId, 'merge');
  assert.equal((await roomHead(server, roomId)).extremities.length, 1);
});

test('a state reset (join-rule evasion) removes a member from lists and shows in their /sync', async () => {
  const roomId = await publicRoom({ power_level_content_override: { users: { [alice.userId]: 100, [carol]: 100 } } });
  // Erin, another local member, is joined on both branches: what is said after the reset notifies her.
  const erin = await server.registerUser('in_erin');
  expectStatus(await membershipAction(server, erin, roomId, 'join'), 200);
  const joinCarol = await remoteJoin(roomId, carol);
  await receive(server, roomId, { pdus: [joinCarol.pdu] });
  const beforeJoin = await roomHead(server, roomId);
  const dave = await server.registerUser('in_dave');
  const first = await server.request('GET', `${C}/sync?timeout=0`, { token: dave.accessToken });
  expectStatus(await membershipAction(server, dave, roomId, 'join'), 200);
  const joined = await server.request('GET', `${C}/sync?timeout=0&since=${first.body.next_batch}`, { token: dave.accessToken });
  assert.ok(joined.body.rooms?.join?.[roomId], 'dave joined');
  const heard = await sendText(server, alice, roomId, `welcome, ${dave.userId}`);
  const before = await server.request('GET', `${C}/notifications`, { token: dave.accessToken });
  assert.ok(before.body.notifications.some((n: any) => n.event.event_id === heard), 'a member is notified of a mention');

  // Carol closed the room on a branch that never saw dave's join.
  const jr = remote.event(roomId, '10', {
    sender: carol, type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'invite' },
    prev: [joinCarol.eventId], authFrom: beforeJoin.state, depth: joinCarol.pdu.depth + 1,
  });
  const r = await receive(server, roomId, { pdus: [jr.pdu] });
  assert.equal(statusOf(r, jr.eventId), 'accepted');

  const h = await roomHead(server, roomId);
  assert.equal(h.state.get(stateKey('m.room.join_rules', '')), jr.eventId);
  assert.equal(h.state.get(stateKey('m.room.member', dave.userId)), undefined, 'dave’s join does not survive resolution');
  const members = await server.request('GET', `${C}/rooms/${e(roomId)}/joined_members`, { token: alice.accessToken });
  assert.equal(members.body.joined[dave.userId], undefined);
  const later = await server.request('GET', `${C}/sync?timeout=0&since=${joined.body.next_batch}`, { token: dave.accessToken });
  assert.ok(!later.body.rooms?.join?.[roomId], 'no longer listed as joined');
  assert.ok(later.body.rooms?.leave?.[roomId], 'the room moved to leave');

  // Push follows the reset too: what is said in the room afterwards does not notify dave.
  const said = await sendText(server, alice, roomId, `are you there, ${dave.userId}?`);
  const notes = await server.request('GET', `${C}/notifications`, { token: dave.accessToken });
  expectStatus(notes, 200);
  assert.ok(!notes.body.notifications.some((n: any) => n.event.event_id === said), 'no notification from a room the reset took dave out of');
  const erinNotes = await server.request('GET', `${C}/notifications`, { token: erin.accessToken });
  assert.ok(erinNotes.body.notifications.some((n: any) => n.event.event_id === said), 'a member still joined is notified');
});

/** A room that lives on the remote: its creation and `count` messages, of which Hearth first learns the latest. */
function remoteRoom(visibility: string, count: number) {
  const roomId = `!hist${Date.now()}${Math.floor(Math.random() * 1e6)}:remote.test`;
  const v = '10';
  const state = new Map<string, string>();
  const chain: RemoteEvent[] = [];
  const stateBeforeOf = new Map<string, Map<string, string>>();
  const next = (f: Omit<Parameters<FakeRemote['event']>[2], 'authFrom' | 'prev' | 'depth'>) => {
    const last = chain[chain.length - 1];
    stateBeforeOf.set('pending', new Map(state));
    const out = remote.event(roomId, v, { ...f, authFrom: state, prev: last ? [last.eventId] : [], depth: last ? last.pdu.depth + 1 : 1 });
    stateBeforeOf.set(out.eventId, stateBeforeOf.get('pending')!);
    if (f.stateKey !== undefined) state.set(stateKey(f.type, f.stateKey), out.eventId);
    chain.push(out);
    return out;
  };
  next({ sender: bob, type: 'm.room.create', stateKey: '', content: { creator: bob, room_version: v } });
  next({ sender: bob, type: 'm.room.member', stateKey: bob, content: { membership: 'join' } });
  next({ sender: bob, type: 'm.room.power_levels', stateKey: '', content: { users: { [bob]: 100 } } });
  next({ sender: bob, type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'public' } });
  next({ sender: bob, type: 'm.room.history_visibility', stateKey: '', content: { history_visibility: visibility } });
  for (let i = 1; i <= count; i++) next({ sender: bob, type: 'm.room.message', content: { msgtype: 'm.text', body: `old ${i}` } });
  const joinPoint = next({ sender: bob, type: 'm.room.message', content: { msgtype: 'm.text', body: 'latest' } });
  return { roomId, version: v, chain, joinPoint, stateBeforeOf, finalState: new Map(state) };
}

/** Hearth learns of the room at its latest event (what a join hands over: the state before it, its events as outliers). */
async function learnRoom(r: ReturnType<typeof remoteRoom>) {
  const stateBefore = new Map([[r.joinPoint.eventId, r.stateBeforeOf.get(r.joinPoint.eventId)!]]);
  const res = await receive(server, r.roomId, { pdus: [r.joinPoint.pdu], outliers: r.chain.slice(0, 5).map((s) => s.pdu), stateBefore }, r.version);
  assert.equal(statusOf(res, r.joinPoint.eventId), 'accepted', JSON.stringify(res));
}

/** Backfill, newest first, in batches of 10, as /backfill answers; the oldest event of each batch comes with the state before it (as /state_ids would give). */
async function backfillAll(r: ReturnType<typeof remoteRoom>) {
  const history = r.chain.slice(0, -1);
  for (let end = history.length; end > 0; end -= 10) {
    const batch = history.slice(Math.max(0, end - 10), end).reverse();
    const oldest = batch[batch.length - 1]!;
    const res = await receive(server, r.roomId, { pdus: batch.map((b) => b.pdu), stateBefore: new Map([[oldest.eventId, r.stateBeforeOf.get(oldest.eventId)!]]) });
    for (const b of batch) assert.equal(statusOf(res, b.eventId), 'accepted', JSON.stringify(res));
  }
}

test('history filled in later (backfill) sorts before what was there, is paginated once in order, and never shows in /sync as new', async () => {
  const r = remoteRoom('shared', 20);
  const roomId = r.roomId;
  await learnRoom(r);
  assert.deepEqual(await selectBackwardExtremities(server.hs.ctx.db, roomId), [r.chain[r.chain.length - 2]!.eventId]);

  expectStatus(await membershipAction(server, alice, roomId, 'join'), 200);
  const s1 = await server.request('GET', `${C}/sync?timeout=0`, { token: alice.accessToken });
  expectStatus(s1, 200);
  await backfillAll(r);
  assert.deepEqual(await selectBackwardExtremities(server.hs.ctx.db, roomId), []);

  const s2 = await server.request('GET', `${C}/sync?timeout=0&since=${s1.body.next_batch}`, { token: alice.accessToken });
  expectStatus(s2, 200);
  const news = (s2.body.rooms?.join?.[roomId]?.timeline?.events ?? []).filter((x: any) => x.type === 'm.room.message');
  assert.deepEqual(news, [], 'backfilled history is not news');

  const expected = ['latest', ...Array.from({ length: 20 }, (_, i) => `old ${20 - i}`)];
  assert.deepEqual(await bodiesBackwards(roomId), expected, 'every event once, newest first');
  const creation = await messages(server, alice, roomId, { dir: 'f', limit: 3 });
  assert.deepEqual(creation.body.chunk.map((x: any) => x.type), ['m.room.create', 'm.room.member', 'm.room.power_levels']);
});

test('history visibility of backfilled events comes from the state at each of them', async () => {
  // "joined": a user sees only what was sent while they were joined. Backfilled history predates
  // alice's join, whatever its place in the stream.
  const r = remoteRoom('joined', 5);
  await learnRoom(r);
  expectStatus(await membershipAction(server, alice, r.roomId, 'join'), 200);
  await sendText(server, alice, r.roomId, 'after my join');
  await backfillAll(r);
  assert.deepEqual(await bodiesBackwards(r.roomId), ['after my join']);
  const old = r.chain[6]!;
  expectStatus(await server.request('GET', `${C}/rooms/${e(r.roomId)}/event/${e(old.eventId)}`, { token: alice.accessToken }), 404);
});

test('a message on a branch that never saw a history-visibility change keeps the visibility of its own state', async () => {
  const roomId = await publicRoom();
  const join = await remoteJoin(roomId, bob);
  await receive(server, roomId, { pdus: [join.pdu] });
  const authFrom = withEntry((await roomHead(server, roomId)).state, 'm.room.member', bob, join.eventId);
  expectStatus(await server.request('PUT', `${C}/rooms/${e(roomId)}/state/m.room.history_visibility/`, { token: alice.accessToken, body: { history_visibility: 'joined' } }), 200);
  // Bob wrote this before he knew of the change: in its state the room's history is still "shared".
  const m = message(roomId, bob, 'said while shared', [join], authFrom);
  assert.equal(statusOf(await receive(server, roomId, { pdus: [m.pdu] }), m.eventId), 'accepted');
  await sendText(server, alice, roomId, 'said while joined-only');

  const dave = await server.registerUser(`in_vis_${Date.now()}`);
  expectStatus(await membershipAction(server, dave, roomId, 'join'), 200);
  // Stream order puts the message after the change; its state says shared, and dave joined later.
  assert.deepEqual(await bodiesBackwards(roomId, dave), ['said while shared']);
});

test('a gap filled in later takes its place in /messages (topological order) and /context', async () => {
  const roomId = await publicRoom();
  const join = await remoteJoin(roomId, bob);
  await receive(server, roomId, { pdus: [join.pdu] });
  const state = withEntry((await roomHead(server, roomId)).state, 'm.room.member', bob, join.eventId);
  const m1 = message(roomId, bob, 'gap one', [join], state);
  const m2 = message(roomId, bob, 'gap two', [m1], state);
  const m3 = message(roomId, bob, 'after the gap', [m2], state);
  // A reported state naming events this server does not have is not taken on trust: they are asked for.
  const bogus = withEntry(state, 'm.room.topic', '', '$notstoredanywhere0000000000000000000000000');
  const asked = await receive(server, roomId, { pdus: [m3.pdu], stateBefore: new Map([[m3.eventId, bogus]]) });
  assert.equal(statusOf(asked, m3.eventId), 'missing');
  assert.deepEqual(asked[0]!.status === 'missing' && asked[0]!.missing, ['$notstoredanywhere0000000000000000000000000']);
  // Bob's server could not send the two before it: their state comes with the event (as /state_ids gives).
  assert.equal(statusOf(await receive(server, roomId, { pdus: [m3.pdu], stateBefore: new Map([[m3.eventId, state]]) }), m3.eventId), 'accepted');
  const s1 = await server.request('GET', `${C}/sync?timeout=0`, { token: alice.accessToken });
  const filled = await receive(server, roomId, { pdus: [m2.pdu, m1.pdu] });
  assert.equal(statusOf(filled, m1.eventId), 'accepted');

  const s2 = await server.request('GET', `${C}/sync?timeout=0&since=${s1.body.next_batch}`, { token: alice.accessToken });
  assert.equal(s2.body.rooms?.join?.[roomId], undefined, 'filled history is not news');

  const page = await messages(server, alice, roomId, { dir: 'b', limit: 5 });
  expectStatus(page, 200);
  assert.deepEqual(page.body.chunk.slice(0, 4).map((x: any) => x.content.body ?? x.type), ['after the gap', 'gap two', 'gap one', 'm.room.member']);
  assert.equal(page.body.chunk[3].event_id, join.eventId);
  const ctx = await server.request('GET', `${C}/rooms/${e(roomId)}/context/${e(m2.eventId)}?limit=2`, { token: alice.accessToken });
  expectStatus(ctx, 200);
  assert.equal(ctx.body.events_before[0].event_id, m1.eventId);
  assert.equal(ctx.body.events_after[0].event_id, m3.eventId);
  // Its tokens continue in the same order.
  const onwards = await messages(server, alice, roomId, { dir: 'f', from: ctx.body.end, limit: 5 });
  assert.deepEqual(onwards.body.chunk.map((x: any) => x.event_id), []);
  const back = await messages(server, alice, roomId, { dir: 'b', from: ctx.body.start, limit: 1 });
  assert.equal(back.body.chunk[0].event_id, join.eventId);
});
