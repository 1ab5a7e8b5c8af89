import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V1 = '/_matrix/client/v1';
const V3 = '/_matrix/client/v3';

// space_hierarchy.yaml; client-server "Spaces" (ordering of children, m.space.child via).
describe('GET /rooms/{roomId}/hierarchy', () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  const ids: Record<string, string> = {};

  const req = (u: TestUser, method: string, path: string, body?: unknown) => server.request(method, path, { token: u.accessToken, body });
  const hierarchy = (u: TestUser, roomId: string, query = '') => req(u, 'GET', `${V1}/rooms/${encodeURIComponent(roomId)}/hierarchy${query}`);
  const names = (rooms: { room_id: string }[]) => rooms.map((r) => Object.keys(ids).find((k) => ids[k] === r.room_id) ?? r.room_id);

  async function create(u: TestUser, body: Record<string, unknown>): Promise<string> {
    const res = await req(u, 'POST', `${V3}/createRoom`, body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.room_id;
  }
  async function addChild(space: string, child: string, content: Record<string, unknown>): Promise<void> {
    const res = await req(alice, 'PUT', `${V3}/rooms/${encodeURIComponent(space)}/state/m.space.child/${encodeURIComponent(child)}`, content);
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    bob = await server.registerUser();
    carol = await server.registerUser();
    const via = [server.serverName];
    ids.space = await create(alice, { preset: 'public_chat', name: 'Space', creation_content: { type: 'm.space' } });
    ids.pub = await create(alice, { preset: 'public_chat', name: 'Public' });
    ids.priv = await create(alice, { preset: 'private_chat', name: 'Private' });
    ids.restricted = await create(alice, {
      preset: 'private_chat',
      name: 'Members only',
      initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: ids.space }] } }],
    });
    ids.sub = await create(alice, { preset: 'public_chat', name: 'Subspace', creation_content: { type: 'm.space' } });
    ids.deep = await create(alice, { preset: 'public_chat', name: 'Deep', initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }] });
    ids.noVia = await create(alice, { preset: 'public_chat', name: 'Not a child' });
    // Orders put pub first, then restricted, priv, sub; sub has none and so comes after all ordered ones.
    await addChild(ids.space, ids.sub, { via });
    await addChild(ids.space, ids.priv, { via, order: 'c' });
    await addChild(ids.space, ids.restricted, { via, order: 'b' });
    await addChild(ids.space, ids.pub, { via, order: 'a', suggested: true });
    await addChild(ids.space, ids.noVia, { order: '0' });
    await addChild(ids.sub, ids.deep, { via });
  });
  after(async () => {
    await server.stop();
  });

  it('shows a member every room of the tree, depth first, children in the spec order', async () => {
    const res = await hierarchy(alice, ids.space);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(names(res.body.rooms), ['space', 'pub', 'restricted', 'priv', 'sub', 'deep']);
    assert.equal(res.body.next_batch, undefined);
    const space = res.body.rooms[0];
    assert.equal(space.room_type, 'm.space');
    assert.equal(space.name, 'Space');
    assert.equal(space.num_joined_members, 1);
    assert.equal(space.world_readable, false);
    assert.equal(typeof space.room_version, 'string');
    const children = space.children_state as { state_key: string; type: string; origin_server_ts: number; content: { via?: string[] } }[];
    assert.deepEqual(children.map((c) => c.state_key).sort(), [ids.pub, ids.priv, ids.restricted, ids.sub].sort(), 'a child without via is no child');
    for (const c of children) {
      assert.equal(c.type, 'm.space.child');
      assert.equal(typeof c.origin_server_ts, 'number');
    }
    const restricted = res.body.rooms.find((r: { room_id: string }) => r.room_id === ids.restricted);
    assert.equal(restricted.join_rule, 'restricted');
    assert.deepEqual(restricted.allowed_room_ids, [ids.space]);
    const deep = res.body.rooms.find((r: { room_id: string }) => r.room_id === ids.deep);
    assert.equal(deep.encryption, 'm.megolm.v1.aes-sha2');
    assert.deepEqual(deep.children_state, []);
  });

  it('shows others only what they may see or join; restricted rooms once they meet the rule', async () => {
    const before = await hierarchy(bob, ids.space);
    assert.equal(before.status, 200);
    assert.deepEqual(names(before.body.rooms), ['space', 'pub', 'sub', 'deep']);
    assert.equal((await req(bob, 'POST', `${V3}/join/${encodeURIComponent(ids.space)}`, {})).status, 200);
    const afterJoin = await hierarchy(bob, ids.space);
    assert.deepEqual(names(afterJoin.body.rooms), ['space', 'pub', 'restricted', 'sub', 'deep']);
  });

  it('suggested_only keeps the suggested children; max_depth stops the walk', async () => {
    assert.deepEqual(names((await hierarchy(alice, ids.space, '?suggested_only=true')).body.rooms), ['space', 'pub']);
    assert.deepEqual(names((await hierarchy(alice, ids.space, '?max_depth=1')).body.rooms), ['space', 'pub', 'restricted', 'priv', 'sub']);
    assert.deepEqual(names((await hierarchy(alice, ids.space, '?max_depth=0')).body.rooms), ['space']);
  });

  it('paginates with limit and next_batch, and refuses changed filters or unknown tokens', async () => {
    const seen: string[] = [];
    let from: string | undefined;
    let pages = 0;
    do {
      const res = await hierarchy(alice, ids.space, `?limit=2${from ? `&from=${encodeURIComponent(from)}` : ''}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.ok(res.body.rooms.length <= 2);
      seen.push(...names(res.body.rooms));
      from = res.body.next_batch;
      pages++;
    } while (from && pages < 10);
    assert.deepEqual(seen, ['space', 'pub', 'restricted', 'priv', 'sub', 'deep']);
    assert.equal(pages, 3);
    const first = await hierarchy(alice, ids.space, '?limit=2');
    const token = encodeURIComponent(first.body.next_batch);
    const changed = await hierarchy(alice, ids.space, `?limit=2&max_depth=1&from=${token}`);
    assert.equal(changed.status, 400);
    assert.equal(changed.body.errcode, 'M_INVALID_PARAM');
    const suggested = await hierarchy(alice, ids.space, `?suggested_only=true&from=${token}`);
    assert.equal(suggested.status, 400);
    const otherRoot = await hierarchy(alice, ids.sub, `?from=${token}`);
    assert.equal(otherRoot.status, 400);
    const bogus = await hierarchy(alice, ids.space, '?from=not-a-token');
    assert.equal(bogus.status, 400);
    assert.equal(bogus.body.errcode, 'M_INVALID_PARAM');
  });

  it('refuses bad limits and depths with 400 M_INVALID_PARAM', async () => {
    for (const q of ['?limit=0', '?limit=-1', '?limit=abc', '?max_depth=-1', '?suggested_only=maybe']) {
      const res = await hierarchy(alice, ids.space, q);
      assert.equal(res.status, 400, q);
      assert.equal(res.body.errcode, 'M_INVALID_PARAM', q);
    }
  });

  it('answers 403 M_FORBIDDEN for a room the user may not see, or one that does not exist', async () => {
    const priv = await hierarchy(carol, ids.priv);
    assert.equal(priv.status, 403);
    assert.equal(priv.body.errcode, 'M_FORBIDDEN');
    const unknown = await hierarchy(carol, `!nowhere:${server.serverName}`);
    assert.equal(unknown.status, 403);
    assert.equal(unknown.body.errcode, 'M_FORBIDDEN');
  });

  it('a restricted room admits members of the allowed room and refuses others', async () => {
    const joined = await req(bob, 'POST', `${V3}/join/${encodeURIComponent(ids.restricted)}`, {});
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    const refused = await req(carol, 'POST', `${V3}/join/${encodeURIComponent(ids.restricted)}`, {});
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errcode, 'M_FORBIDDEN');
  });
});
