// The user directory's remote users as the directory's own tables keep them from the rooms'
// current-state stream: accent-folded word search like local users ("marq" finds "Márquez"),
// a redacted member event's profile pruned, a remote user removed by a state reset drops out as one who leaves does, and the migration's
// fill of an existing database gives the same rows the stream would, and a restart resumes from
// the stored position.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { stateKey } from '../../src/core/types.js';
import { fillFromCurrentState } from '../../src/directory/migrations.js';
import { eventually } from '../federation/federation-helpers.js';
import { FakeRemote, receive, roomHead, statusOf } from '../helpers/remote-server.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, expectStatus } from '../rooms/room-helpers.js';

describe('user directory: remote users from the current-state stream', { timeout: 120_000 }, () => {
  let s: TestServer;
  let alice: TestUser;
  /** A user of this server in no room with the remote users. */
  let zoe: TestUser;
  const remote = new FakeRemote('far.test');
  const carol = remote.user('carol');

  const search = async (user: TestUser, term: string) => {
    const res = await s.request('POST', `${C}/user_directory/search`, { token: user.accessToken, body: { search_term: term, limit: 50 } });
    expectStatus(res, 200);
    return res.body.results as { user_id: string; display_name?: string; avatar_url?: string }[];
  };
  const found = async (user: TestUser, term: string, userId: string) => (await search(user, term)).find((r) => r.user_id === userId);

  /** A remote user's join, built on the room's current head; accepted. */
  const remoteJoin = async (roomId: string, userId: string, content: Record<string, unknown>) => {
    const h = await roomHead(s, roomId);
    const ev = remote.event(roomId, '10', {
      sender: userId, type: 'm.room.member', stateKey: userId, content: { membership: 'join', ...content },
      prev: h.extremities, authFrom: h.state, depth: h.depth + 1,
    });
    assert.equal(statusOf(await receive(s, roomId, { pdus: [ev.pdu] }), ev.eventId), 'accepted');
    return ev;
  };

  before(async () => {
    s = await startTestServer();
    remote.trustedBy(s);
    alice = await s.registerUser('alice');
    zoe = await s.registerUser('zoe');
  });
  after(async () => {
    await s.stop();
  });

  it('finds a remote display name with accents by words typed without them, and by words of the user id', async () => {
    const roomId = await createRoom(s, alice, { preset: 'public_chat', room_version: '10' });
    const jose = remote.user('jose.smith');
    const joined = await remoteJoin(roomId, jose, { displayname: 'José Márquez', avatar_url: 'mxc://far.test/jm' });
    const hit = await eventually(() => found(zoe, 'marq', jose), 'José found by "marq"');
    assert.deepEqual(hit, { user_id: jose, display_name: 'José Márquez', avatar_url: 'mxc://far.test/jm' });
    assert.ok(await found(zoe, 'jose marquez', jose), 'every word, accents folded');
    assert.ok(await found(zoe, 'MÁRQ', jose), 'typed with the accent and in capitals');
    assert.ok(await found(zoe, 'smi', jose), 'a word of the user id');
    assert.equal(await found(zoe, 'arquez', jose), undefined, 'not inside a word');
    assert.equal(await found(zoe, 'marq jones', jose), undefined, 'not when a word matches nothing');

    // A redaction of the member event prunes its profile: the name no longer finds José.
    expectStatus(await s.request('PUT', `${C}/rooms/${e(roomId)}/redact/${e(joined.eventId)}/r1`, { token: alice.accessToken, body: {} }), 200);
    await eventually(async () => (await found(zoe, 'marq', jose)) === undefined, 'the redacted name gone');
    assert.deepEqual(await found(zoe, 'smith', jose), { user_id: jose }, 'still found by the user id, without a name or avatar');
  });

  it('a remote user removed from the room by a state reset drops out', async () => {
    const roomId = await createRoom(s, alice, {
      preset: 'public_chat', room_version: '10', power_level_content_override: { users: { [alice.userId]: 100, [carol]: 100 } },
    });
    const joinCarol = await remoteJoin(roomId, carol, {});
    const beforeMike = await roomHead(s, roomId);
    const mike = remote.user('mike');
    await remoteJoin(roomId, mike, { displayname: 'Mike Reset' });
    await eventually(() => found(alice, 'reset', mike), 'mike in alice’s directory');
    assert.ok(await eventually(() => found(zoe, 'reset', mike), 'mike in zoe’s directory (public room)'));

    // Carol closes the room on a branch that never saw mike's join: resolution drops his membership.
    const jr = remote.event(roomId, '10', {
      sender: carol, type: 'm.room.join_rules', stateKey: '', content: { join_rule: 'invite' },
      prev: [joinCarol.eventId], authFrom: beforeMike.state, depth: joinCarol.pdu.depth + 1,
    });
    assert.equal(statusOf(await receive(s, roomId, { pdus: [jr.pdu] }), jr.eventId), 'accepted');
    assert.equal((await roomHead(s, roomId)).state.get(stateKey('m.room.member', mike)), undefined, 'the reset removed mike');
    await eventually(async () => (await found(alice, 'reset', mike)) === undefined, 'mike gone from alice’s directory');
    assert.equal(await found(zoe, 'reset', mike), undefined, 'the room is invite-only now');
    assert.ok(await found(alice, 'carol', carol), 'carol is still there');
  });

  it('the migration fills the tables from the rooms this server already has', async () => {
    const roomId = await createRoom(s, alice, { preset: 'public_chat', room_version: '10' });
    const nina = remote.user('nina');
    const ninaJoin = await remoteJoin(roomId, nina, { displayname: 'Nína Öberg' });
    await eventually(() => found(zoe, 'oberg', nina), 'nina in zoe’s directory while the room is public');
    // The room closes after nina joined: she stays, for those who share it.
    expectStatus(await s.request('PUT', `${C}/rooms/${e(roomId)}/state/m.room.join_rules/`, { token: alice.accessToken, body: { join_rule: 'invite' } }), 200);
    await eventually(async () => (await found(zoe, 'oberg', nina)) === undefined, 'nina out of zoe’s directory once the room is invite-only');
    const db = s.hs.ctx.db;
    const filled = await db.transaction().execute(async (trx) => {
      for (const t of ['user_directory_remote', 'user_directory_local', 'user_directory_rooms', 'user_directory_position'] as const) await trx.deleteFrom(t).execute();
      await fillFromCurrentState(trx as unknown as Kysely<any>);
      return {
        nina: await trx.selectFrom('user_directory_remote').selectAll().where('user_id', '=', nina).execute(),
        alice: await trx.selectFrom('user_directory_local').select('room_id').where('user_id', '=', alice.userId).execute(),
        room: await trx.selectFrom('user_directory_rooms').selectAll().where('room_id', '=', roomId).executeTakeFirst(),
        pos: await trx.selectFrom('user_directory_position').select('stream_pos').executeTakeFirstOrThrow(),
        head: await trx.selectFrom('current_state_deltas').select((eb) => eb.fn.max('stream_pos').as('p')).executeTakeFirstOrThrow(),
      };
    });
    assert.deepEqual(
      filled.nina.map((r) => ({ ...r, stream_pos: undefined })),
      [{ room_id: roomId, user_id: nina, event_id: ninaJoin.eventId, display_name: 'Nína Öberg', avatar_url: null, search_text: ' nina far test oberg', stream_pos: undefined }],
    );
    assert.ok(filled.alice.some((r) => r.room_id === roomId), 'alice’s rooms');
    assert.equal(filled.room?.join_rule, 'invite');
    assert.equal(filled.room?.history_visibility, 'shared');
    assert.equal(Number(filled.pos.stream_pos), Number(filled.head.p), 'the consumer goes on from the stream’s head');
    assert.ok(await found(alice, 'nina', nina));
    assert.equal(await found(zoe, 'nina', nina), undefined, 'a private room zoe is not in');
  });

  it('a stretch of messages alone writes nothing; the next change records the position past it', async (t) => {
    if (!s.hs.ctx.leases.heldNames().includes('user_directory')) return t.skip('another node of this server keeps the directory');
    const consumer = s.hs.ctx.services.directory.remoteUsers;
    const db = s.hs.ctx.db;
    const position = async () => Number((await db.selectFrom('user_directory_position').select('stream_pos').executeTakeFirstOrThrow()).stream_pos);
    const roomId = await createRoom(s, alice, { preset: 'public_chat', room_version: '10' });
    await consumer.catchUp();
    const before = await position();
    for (let i = 0; i < 5; i++) expectStatus(await s.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/quiet-${i}`, { token: alice.accessToken, body: { msgtype: 'm.text', body: `m${i}` } }), 200);
    await consumer.catchUp();
    assert.equal(await position(), before, 'no commit for a stretch that changes nothing');
    const pia = remote.user('pia');
    await remoteJoin(roomId, pia, { displayname: 'Pia After' });
    await consumer.catchUp();
    const head = Number((await db.selectFrom('current_state_deltas').select((eb) => eb.fn.max('stream_pos').as('p')).executeTakeFirstOrThrow()).p);
    assert.ok((await position()) >= head, 'written with the join, past the messages');
    assert.ok(await found(zoe, 'pia', pia));
  });

  it('after a restart the directory goes on from its stored position', async (t) => {
    if (!s.hs.ctx.leases.heldNames().includes('user_directory')) return t.skip('another node of this server keeps the directory');
    await s.hs.ctx.services.directory.remoteUsers.stop();
    const roomId = await createRoom(s, alice, { preset: 'public_chat', room_version: '10' });
    const omar = remote.user('omar');
    await remoteJoin(roomId, omar, { displayname: 'Omar Paused' });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await found(zoe, 'paused', omar), undefined, 'nothing applies the join while the consumer is stopped');
    await s.restart();
    remote.trustedBy(s);
    await eventually(() => found(zoe, 'paused', omar), 'omar found after the restart');
  });
});
