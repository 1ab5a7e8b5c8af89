// A redaction accepted while a partial-state join's state lacked members, then withdrawn when the
// full state is filled in (MSC3902 re-check; joins-v2.yaml, `omit_members`): mallory, banned in a
// state send_join left out, redacts three of alice's messages through a.test's key to b.test
// alone. Once the fill rejects those redactions, the first message is served unredacted again
// (/event, /sync, /messages, search); the second stays redacted, by alice's own redaction, which
// b.test accepted meanwhile but could not mark (the message was redacted already); the third,
// which mallory redacted twice, is served whole again too. b.test reaches a.test through a proxy
// that holds the /state requests of the resync.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { finaliseEvent, type EventDraft } from '../../src/core/event-format.js';
import { stateKey } from '../../src/core/types.js';
import type { TestServer, TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus, messages, putState, sendText } from '../rooms/room-helpers.js';
import { eventually, F, holdingProxy, signedRequest, startPartialStatePair } from './federation-helpers.js';

let a: TestServer;
let b: TestServer;
let stop: () => Promise<void>;
let proxy: Awaited<ReturnType<typeof holdingProxy>>;
let alice: TestUser;
let mallory: TestUser;
let bob: TestUser;
let roomId: string;
let kept: string;
let twice: string;
let doubly: string;
let sneaky: string;
let aliceRedaction: string;
let sinceDuringPartial: string;

before(async () => {
  ({ a, b, stop, proxy } = await startPartialStatePair());
  alice = await a.registerUser('alice');
  mallory = await a.registerUser('mallory');
  bob = await b.registerUser('bob');
});
after(async () => {
  await stop();
});

const partialRow = () => b.hs.ctx.db.selectFrom('partial_state_rooms').selectAll().where('room_id', '=', roomId).executeTakeFirst();
const redactedBy = async (id: string) => (await b.hs.ctx.db.selectFrom('events').select('redacted_by').where('event_id', '=', id).executeTakeFirstOrThrow()).redacted_by;

async function sync(since?: string): Promise<any> {
  const res = await b.request('GET', `${C}/sync?timeout=0${since ? `&since=${e(since)}` : ''}`, { token: bob.accessToken });
  expectStatus(res, 200);
  return res.body;
}

async function eventBody(id: string): Promise<unknown> {
  const res = await b.request('GET', `${C}/rooms/${e(roomId)}/event/${e(id)}`, { token: bob.accessToken });
  expectStatus(res, 200);
  return res.body.content.body;
}

async function search(term: string): Promise<string[]> {
  const res = await b.request('POST', `${C}/search`, { token: bob.accessToken, body: { search_categories: { room_events: { search_term: term } } } });
  expectStatus(res, 200);
  return res.body.search_categories.room_events.results.map((r: any) => r.result.event_id);
}

/** A redaction of `target` by mallory, signed with a.test's key, on the room's ends as b.test holds them, sent to b.test alone. */
async function redactAsMallory(target: string, malloryJoin: string): Promise<string> {
  const head = (await b.hs.ctx.services.rooms.core.heads.get(roomId))!;
  const v11 = head.version.redaction === 'v11';
  const draft = {
    room_id: roomId,
    sender: mallory.userId,
    type: 'm.room.redaction',
    content: v11 ? { redacts: target } : {},
    ...(v11 ? {} : { redacts: target }),
    prev_events: head.extremities.map((x) => x.eventId),
    // Room v12 names no create event among auth events (its room id is the create event's hash).
    auth_events: [...(head.version.roomIdIsCreateEventHash ? [] : [head.state.get(stateKey('m.room.create', ''))!]), head.state.get(stateKey('m.room.power_levels', ''))!, malloryJoin],
    depth: Math.max(...head.extremities.map((x) => x.depth)) + 1,
    origin_server_ts: Date.now(),
  } as unknown as EventDraft;
  const ev = finaliseEvent(draft, head.version, 'a.test', a.hs.ctx.signingKey);
  const res = await signedRequest(b, 'PUT', `${F}/send/${e(ev.eventId)}`, { origin: 'a.test', key: a.hs.ctx.signingKey, body: { origin: 'a.test', origin_server_ts: Date.now(), pdus: [ev.pdu] } });
  expectStatus(res, 200);
  assert.deepEqual(res.body.pdus[ev.eventId], {});
  return ev.eventId;
}

test('redactions by a member banned in the omitted state are accepted while the state is partial', async () => {
  // mallory (power 50, enough to redact others) names the room, so her join is in the auth chain
  // send_join returns; she is banned before b.test joins.
  roomId = await createRoom(a, alice, { preset: 'public_chat', power_level_content_override: { users: { [mallory.userId]: 50 } } });
  expectStatus(await a.request('POST', `${C}/join/${e(roomId)}`, { token: mallory.accessToken, body: {} }), 200);
  expectStatus(await putState(a, mallory, roomId, 'm.room.name', '', { name: 'Named by mallory' }), 200);
  const malloryJoin = (await a.hs.ctx.db
    .selectFrom('events')
    .select('event_id')
    .where('room_id', '=', roomId)
    .where('type', '=', 'm.room.member')
    .where('state_key', '=', mallory.userId)
    .where('membership', '=', 'join')
    .executeTakeFirstOrThrow()).event_id;
  expectStatus(await a.request('POST', `${C}/rooms/${e(roomId)}/ban`, { token: alice.accessToken, body: { user_id: mallory.userId } }), 200);

  proxy.hold();
  const asked = proxy.heldRequests();
  expectStatus(await b.request('POST', `${C}/join/${e(roomId)}?server_name=a.test`, { token: bob.accessToken, body: {} }), 200);
  await eventually(async () => proxy.heldRequests() > asked, 'the resync asking a.test for the state');
  assert.ok(await partialRow(), 'the room is marked partial');
  sinceDuringPartial = (await sync()).next_batch;

  kept = await sendText(a, alice, roomId, 'keep this findable');
  twice = await sendText(a, alice, roomId, 'redacted twice');
  doubly = await sendText(a, alice, roomId, 'redacted twice by mallory');
  await eventually(async () => (await b.hs.ctx.services.rooms.core.events.get(doubly)) !== undefined, 'alice’s messages on b.test');
  await eventually(async () => (await search('findable')).includes(kept), 'the message indexed on b.test');

  sneaky = await redactAsMallory(kept, malloryJoin);
  const sneakyTwice = await redactAsMallory(twice, malloryJoin);
  const firstOfTwo = await redactAsMallory(doubly, malloryJoin);
  await redactAsMallory(doubly, malloryJoin);
  // alice's own redaction reaches b.test after mallory's: the message is redacted already, so it is not marked.
  const r = await a.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(twice)}/alice-redacts`, { token: alice.accessToken, body: { reason: 'mine' } });
  expectStatus(r, 200);
  aliceRedaction = r.body.event_id;
  await eventually(async () => (await b.hs.ctx.services.rooms.core.events.get(aliceRedaction)) !== undefined, 'alice’s redaction on b.test');

  assert.equal(await eventBody(kept), undefined, 'served redacted while the state is partial');
  assert.equal(await redactedBy(kept), sneaky);
  assert.equal(await redactedBy(twice), sneakyTwice);
  assert.equal(await redactedBy(doubly), firstOfTwo, 'the second redaction finds the message redacted already');
  assert.equal((await search('findable')).includes(kept), false);
});

test('the fill rejects the redactions: the message they alone redacted is served whole again, the other stays redacted by alice', async () => {
  proxy.release();
  await eventually(async () => (await partialRow()) === undefined, 'the full state filled in');
  const row = await b.hs.ctx.db.selectFrom('events').select(['rejected_reason']).where('event_id', '=', sneaky).executeTakeFirstOrThrow();
  assert.ok(row.rejected_reason, 'mallory’s redaction is rejected');

  assert.equal(await redactedBy(kept), null);
  assert.equal(await eventBody(kept), 'keep this findable');
  const whole = await b.request('GET', `${C}/rooms/${e(roomId)}/event/${e(kept)}`, { token: bob.accessToken });
  assert.equal(whole.body.unsigned?.redacted_because, undefined);

  assert.equal(await redactedBy(twice), aliceRedaction);
  assert.equal(await eventBody(twice), undefined, 'still redacted, by alice');
  assert.equal(await redactedBy(doubly), null, 'both of mallory’s redactions are withdrawn');
  assert.equal(await eventBody(doubly), 'redacted twice by mallory');

  // /sync from a token taken while the state was partial renders the room whole, the message unredacted.
  const room = (await sync(sinceDuringPartial)).rooms.join[roomId];
  const inSync = room.timeline.events.find((ev: any) => ev.event_id === kept);
  assert.equal(inSync?.content.body, 'keep this findable');
  const full = (await sync()).rooms.join[roomId];
  assert.equal(full.timeline.events.find((ev: any) => ev.event_id === kept)?.content.body, 'keep this findable');
  const res = await messages(b, bob, roomId, { dir: 'b', limit: 50 });
  expectStatus(res, 200);
  assert.equal(res.body.chunk.find((ev: any) => ev.event_id === kept)?.content.body, 'keep this findable');
  assert.equal(res.body.chunk.some((ev: any) => ev.event_id === sneaky), false, 'the rejected redaction is not served');
  assert.ok((await search('findable')).includes(kept), 'searchable again');
});
