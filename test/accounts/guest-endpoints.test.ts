/**
 * What a guest account may call, endpoint by endpoint (spec: modules/guest_access, "Client
 * behaviour"). The allowed list is read from the spec's own page (its links name the
 * operations); every other client-server operation that takes an access token answers a
 * guest's token with 403 M_GUEST_ACCESS_FORBIDDEN, and an operation that takes no token is not
 * refused because a guest sent one.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SPEC_ENDPOINTS, type SpecEndpoint } from '../e2e/spec-endpoints.js';
import { fillPath, pathValues } from '../helpers/endpoint-urls.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { SPEC_DIR } from '../helpers/spec-schemas.js';

const GUEST_PAGE = join(SPEC_DIR, 'content', 'client-server-api', 'modules', 'guest_access.md');
const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

/** The spec's anchor for an operation: `get_matrixclientv3roomsroomidstate`. */
const anchorOf = (ep: SpecEndpoint) => `${ep.m.toLowerCase()}_${ep.p.replace(/[^A-Za-z0-9]/g, '').toLowerCase()}`;

/** The operations the guest access page links to, by anchor. */
function guestAllowedAnchors(): Set<string> {
  const page = readFileSync(GUEST_PAGE, 'utf8');
  const section = page.slice(page.indexOf('#### Client behaviour'), page.indexOf('#### Server behaviour'));
  return new Set([...section.matchAll(/\(#((?:get|put|post|delete)_[a-z0-9]+)\)/g)].map((m) => m[1]!));
}

/** Operations guests may call beyond the spec's list, with the reason. */
const ALSO_ALLOWED: Record<string, string> = {
  joinRoom: 'POST /join/{roomIdOrAlias} is the join the list allows (POST /rooms/{roomId}/join) by alias too; matrix-js-sdk joins through it',
  // Anyone may call these two without a token; a guest who sends one gets what anyone gets.
  getVersions: 'every client asks /versions first, with its token when it has one',
  getRoomSummary: 'a summary of a room, as anyone may ask for it, is what a guest needs before joining',
};

/**
 * Allowed operations whose allowance the spec narrows: called here with the path parameters and
 * query it allows (from the fixtures `v`), and in the test below with ones it does not.
 */
const NARROWED: Record<string, (v: Record<string, string>) => { params?: Record<string, string>; query?: Record<string, string> }> = {
  // "Guest users may only modify their display name; other profile fields may not be changed."
  setProfileField: () => ({ params: { keyName: 'displayname' } }),
  deleteProfileField: () => ({ params: { keyName: 'displayname' } }),
  // "GET /events as used for room previews": with a room_id.
  getEvents: (v) => ({ query: { room_id: v.roomId! } }),
};

/** Operations that end the guest's session or membership go last. */
const ENDING = /\/(logout|logout\/all|account\/deactivate|leave|forget)$/;

describe('the endpoints a guest may call (spec: modules/guest_access)', { skip: existsSync(GUEST_PAGE) ? false : `no spec page at ${GUEST_PAGE}`, timeout: 120_000 }, () => {
  let server: TestServer;
  let alice: TestUser;
  let guest: { user_id: string; access_token: string; device_id: string };
  let values: Record<string, string>;

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    const req = (token: string | undefined, method: string, path: string, body?: unknown) => server.request(method, path, { token, body });
    // private_chat gives m.room.guest_access can_join; the room is made public and world-readable.
    const roomId: string = (await req(alice.accessToken, 'POST', `${V3}/createRoom`, { preset: 'private_chat', room_alias_name: `guests${process.pid}` })).body.room_id;
    await req(alice.accessToken, 'PUT', `${V3}/rooms/${enc(roomId)}/state/m.room.join_rules/`, { join_rule: 'public' });
    await req(alice.accessToken, 'PUT', `${V3}/rooms/${enc(roomId)}/state/m.room.history_visibility/`, { history_visibility: 'world_readable' });
    const sent = await req(alice.accessToken, 'PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/g1`, { msgtype: 'm.text', body: 'hello guests' });
    const upload = await server.request('POST', '/_matrix/media/v3/upload?filename=a.txt', { token: alice.accessToken, rawBody: 'hello', headers: { 'content-type': 'text/plain' } });
    const mxc = new URL(upload.body.content_uri);
    const filter = await req(alice.accessToken, 'POST', `${V3}/user/${enc(alice.userId)}/filter`, {});
    const registered = await req(undefined, 'POST', `${V3}/register?kind=guest`, {});
    assert.equal(registered.status, 200, JSON.stringify(registered.body));
    guest = registered.body;
    const joined = await req(guest.access_token, 'POST', `${V3}/rooms/${enc(roomId)}/join`, {});
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    values = pathValues({
      userId: guest.user_id,
      roomId,
      eventId: sent.body.event_id,
      deviceId: guest.device_id,
      roomAlias: `#guests${process.pid}:${server.serverName}`,
      serverName: mxc.host,
      mediaId: mxc.pathname.slice(1),
      filterId: filter.body.filter_id,
    });
  });

  after(async () => {
    await server?.stop();
  });

  function urlFor(ep: SpecEndpoint, overrides: Record<string, string> = {}, query: Record<string, string> = {}): string {
    const q = new URLSearchParams(query);
    for (const f of ep.query ?? []) {
      if (!f.required || q.has(f.name)) continue;
      q.set(f.name, f.name === 'width' || f.name === 'height' ? '32' : f.name === 'dir' ? 'b' : f.name === 'url' ? 'http://127.0.0.1/' : f.name === 'redirectUrl' ? 'http://127.0.0.1/done' : '1');
    }
    if (/\/(sync|events)$/.test(ep.p) && ep.m === 'GET') q.set('timeout', '0');
    const path = fillPath(ep.p, { ...values, ...overrides });
    return q.size ? `${path}?${q}` : path;
  }

  async function call(ep: SpecEndpoint, url: string) {
    const withBody = ep.m === 'POST' || ep.m === 'PUT';
    return server.request(ep.m, url, { token: guest.access_token, ...(withBody ? { body: {} } : {}) });
  }

  it("reads the allowed list from the spec's page", () => {
    const anchors = guestAllowedAnchors();
    // The page links about 25 operations; far fewer means it was not read right.
    assert.ok(anchors.size >= 20, [...anchors].join(', '));
    const known = new Set(SPEC_ENDPOINTS.map(anchorOf));
    // The media download links are to the v1 operations, which are in the table; every link names a known operation.
    assert.deepEqual([...anchors].filter((a) => !known.has(a)), []);
  });

  it('every operation taking a token: listed ones serve a guest, the others answer 403 M_GUEST_ACCESS_FORBIDDEN', async () => {
    const anchors = guestAllowedAnchors();
    const failures: string[] = [];
    const ordered = [...SPEC_ENDPOINTS.filter((e) => !ENDING.test(e.p)), ...SPEC_ENDPOINTS.filter((e) => ENDING.test(e.p))];
    let allowedCount = 0;
    let refusedCount = 0;
    for (const ep of ordered) {
      const allowed = anchors.has(anchorOf(ep)) || ALSO_ALLOWED[ep.op] !== undefined;
      const narrowed = NARROWED[ep.op]?.(values);
      const url = urlFor(ep, narrowed?.params, narrowed?.query);
      const res = await call(ep, url);
      const refused = res.status === 403 && res.body?.errcode === 'M_GUEST_ACCESS_FORBIDDEN';
      const what = `${ep.m} ${url} (${ep.op}, auth ${ep.auth})`;
      if (res.status >= 500) failures.push(`${what}: server error ${res.status} ${JSON.stringify(res.body)?.slice(0, 160)}`);
      else if (ep.auth === 'none' || allowed) {
        allowedCount++;
        if (refused) failures.push(`${what}: refused, but ${ep.auth === 'none' ? 'it takes no token' : 'guests may call it'}`);
      } else {
        refusedCount++;
        if (!refused) failures.push(`${what}: guests may not call it, answered ${res.status} ${JSON.stringify(res.body)?.slice(0, 160)}`);
      }
    }
    assert.deepEqual(failures, [], `${failures.length} operations treat guests wrongly:\n${failures.join('\n')}`);
    console.log(`# guests: ${allowedCount} operations serve a guest, ${refusedCount} refuse one`);
  });

  it('the narrowed allowances: only the display name of the profile; /events only to preview a room', async () => {
    const avatar = await server.request('PUT', `${V3}/profile/${enc(guest.user_id)}/avatar_url`, { token: guest.access_token, body: { avatar_url: 'mxc://localhost/x' } });
    assert.equal(avatar.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN', JSON.stringify(avatar.body));
    const custom = await server.request('PUT', `${V3}/profile/${enc(guest.user_id)}/org.example.field`, { token: guest.access_token, body: { 'org.example.field': 'x' } });
    assert.equal(custom.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN', JSON.stringify(custom.body));
    const dropAvatar = await server.request('DELETE', `${V3}/profile/${enc(guest.user_id)}/avatar_url`, { token: guest.access_token });
    assert.equal(dropAvatar.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN', JSON.stringify(dropAvatar.body));
    const named = await server.request('PUT', `${V3}/profile/${enc(guest.user_id)}/displayname`, { token: guest.access_token, body: { displayname: 'Visitor' } });
    assert.equal(named.status, 200, JSON.stringify(named.body));

    const everything = await server.request('GET', `${V3}/events?timeout=0`, { token: guest.access_token });
    assert.equal(everything.body.errcode, 'M_GUEST_ACCESS_FORBIDDEN', JSON.stringify(everything.body));
    const preview = await server.request('GET', `${V3}/events?timeout=0&room_id=${enc(values.roomId!)}`, { token: guest.access_token });
    assert.equal(preview.status, 200, JSON.stringify(preview.body));
  });
});
