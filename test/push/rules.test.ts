import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

describe('Push rules API (spec: client-server-api modules/push.md "Push Rules: API", pushrules.yaml)', () => {
  let server: TestServer;
  let alice: TestUser;
  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
  });
  after(async () => {
    await server.stop();
  });

  const rule = (kind: string, id: string, suffix = '') => `${V3}/pushrules/global/${kind}/${encodeURIComponent(id)}${suffix}`;
  const req = (method: string, path: string, body?: unknown, u: TestUser = alice) => server.request(method, path, { token: u.accessToken, body });
  const ids = async (kind: string, u: TestUser = alice): Promise<string[]> =>
    (await req('GET', `${V3}/pushrules/`, undefined, u)).body.global[kind].map((r: { rule_id: string }) => r.rule_id);

  it('GET /pushrules/ returns the server-default global ruleset for the user', async () => {
    const res = await req('GET', `${V3}/pushrules/`);
    assert.equal(res.status, 200);
    const g = res.body.global;
    assert.equal(g.override[0].rule_id, '.m.rule.master');
    assert.equal(g.override[0].enabled, false);
    assert.ok(g.underride.some((r: { rule_id: string }) => r.rule_id === '.m.rule.message'));
    const invite = g.override.find((r: { rule_id: string }) => r.rule_id === '.m.rule.invite_for_me');
    assert.ok(invite.conditions.some((c: { key: string; pattern: string }) => c.key === 'state_key' && c.pattern === alice.userId));
    for (const kind of ['override', 'content', 'room', 'sender', 'underride']) assert.ok(Array.isArray(g[kind]));
    const global = await req('GET', `${V3}/pushrules/global/`);
    assert.deepEqual(global.body, g);
  });

  it('PUT creates an enabled user rule, most important of its kind (after .m.rule.master for override)', async () => {
    const body = { conditions: [{ kind: 'event_match', key: 'content.body', pattern: 'beer' }], actions: ['notify'] };
    assert.equal((await req('PUT', rule('override', 'beer'), body)).status, 200);
    const got = await req('GET', rule('override', 'beer'));
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, { rule_id: 'beer', default: false, enabled: true, actions: ['notify'], conditions: body.conditions });
    const order = await ids('override');
    assert.deepEqual(order.slice(0, 2), ['.m.rule.master', 'beer']);
  });

  it('PUT with before/after places the rule relative to another user rule', async () => {
    const u = await server.registerUser();
    const put = (id: string, q = '') => req('PUT', rule('content', id) + q, { pattern: id, actions: ['notify'] }, u);
    assert.equal((await put('a')).status, 200);
    assert.equal((await put('b', '?before=a')).status, 200);
    assert.equal((await put('c', '?after=b')).status, 200);
    assert.equal((await put('d')).status, 200);
    assert.deepEqual(await ids('content', u), ['d', 'b', 'c', 'a']);
    // Updating an existing rule with an anchor moves it.
    assert.equal((await put('d', '?after=a')).status, 200);
    assert.deepEqual(await ids('content', u), ['b', 'c', 'a', 'd']);
  });

  it('PUT errors: unknown anchor and server-default anchor (400), reserved or invalid rule ids (M_INVALID_PARAM)', async () => {
    const body = { pattern: 'x', actions: ['notify'] };
    const unknown = await req('PUT', rule('content', 'x') + '?before=nope', body);
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.errcode, 'M_UNKNOWN');
    const defaultAnchor = await req('PUT', rule('override', 'x') + '?after=.m.rule.master', { actions: [] });
    assert.equal(defaultAnchor.status, 400);
    const reserved = await req('PUT', rule('override', '.m.rule.mine'), { actions: [] });
    assert.equal(reserved.status, 400);
    assert.equal(reserved.body.errcode, 'M_INVALID_PARAM');
    const slash = await req('PUT', rule('override', 'a\\b'), { actions: [] });
    assert.equal(slash.status, 400);
    assert.equal(slash.body.errcode, 'M_INVALID_PARAM');
    const badKind = await req('PUT', rule('everything', 'x'), { actions: [] });
    assert.equal(badKind.status, 400);
    assert.equal(badKind.body.errcode, 'M_INVALID_PARAM');
    const noActions = await req('PUT', rule('override', 'x'), { conditions: [] });
    assert.equal(noActions.status, 400);
    assert.equal(noActions.body.errcode, 'M_BAD_JSON');
    const noPattern = await req('PUT', rule('content', 'x'), { actions: ['notify'] });
    assert.equal(noPattern.status, 400);
    assert.equal((await req('GET', rule('content', 'x'))).status, 404, 'nothing was created');
  });

  it('GET/PUT .../enabled on user and server-default rules', async () => {
    await req('PUT', rule('sender', '@spam:example.org'), { actions: [] });
    assert.deepEqual((await req('GET', rule('sender', '@spam:example.org', '/enabled'))).body, { enabled: true });
    assert.equal((await req('PUT', rule('sender', '@spam:example.org', '/enabled'), { enabled: false })).status, 200);
    assert.deepEqual((await req('GET', rule('sender', '@spam:example.org', '/enabled'))).body, { enabled: false });

    assert.equal((await req('PUT', rule('override', '.m.rule.master', '/enabled'), { enabled: true })).status, 200);
    const all = await req('GET', `${V3}/pushrules/`);
    assert.equal(all.body.global.override[0].enabled, true);
    assert.equal(all.body.global.override[0].default, true);
    await req('PUT', rule('override', '.m.rule.master', '/enabled'), { enabled: false });

    const missing = await req('PUT', rule('room', '!nope:localhost', '/enabled'), { enabled: true });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.errcode, 'M_NOT_FOUND');
    const badBody = await req('PUT', rule('override', '.m.rule.master', '/enabled'), { enabled: 'yes' });
    assert.equal(badBody.status, 400);
    assert.equal(badBody.body.errcode, 'M_BAD_JSON');
  });

  it('GET/PUT .../actions on user and server-default rules; historical dont_notify is dropped', async () => {
    await req('PUT', rule('room', '!r:localhost'), { actions: ['notify'] });
    const actions = ['notify', { set_tweak: 'sound', value: 'bing' }];
    assert.equal((await req('PUT', rule('room', '!r:localhost', '/actions'), { actions })).status, 200);
    assert.deepEqual((await req('GET', rule('room', '!r:localhost', '/actions'))).body, { actions });

    assert.equal((await req('PUT', rule('underride', '.m.rule.message', '/actions'), { actions: ['dont_notify'] })).status, 200);
    assert.deepEqual((await req('GET', rule('underride', '.m.rule.message', '/actions'))).body, { actions: [] });
    const unknown = await req('GET', rule('underride', '.m.rule.nothing', '/actions'));
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.errcode, 'M_NOT_FOUND');
  });

  it('DELETE removes a user rule; unknown and server-default rules answer 404 M_NOT_FOUND', async () => {
    await req('PUT', rule('override', 'tmp'), { actions: [] });
    assert.equal((await req('DELETE', rule('override', 'tmp'))).status, 200);
    const gone = await req('GET', rule('override', 'tmp'));
    assert.equal(gone.status, 404);
    assert.equal(gone.body.errcode, 'M_NOT_FOUND');
    const again = await req('DELETE', rule('override', 'tmp'));
    assert.equal(again.status, 404);
    assert.equal(again.body.errcode, 'M_NOT_FOUND');
    const builtin = await req('DELETE', rule('override', '.m.rule.master'));
    assert.equal(builtin.status, 404);
    assert.ok((await ids('override')).includes('.m.rule.master'));
  });

  it('rules are per user', async () => {
    const bob = await server.registerUser();
    await req('PUT', rule('override', 'alice-only'), { actions: [] });
    assert.equal((await req('GET', rule('override', 'alice-only'), undefined, bob)).status, 404);
  });

  it('a change is published as m.push_rules account data holding the new ruleset ("Push Rules: Events")', async () => {
    const u = await server.registerUser();
    await req('PUT', rule('content', 'cake'), { pattern: 'cake', actions: ['notify'] }, u);
    const data = await server.hs.ctx.services.sync.getAccountData(u.userId, null, 'm.push_rules');
    assert.ok(data, 'm.push_rules account data written');
    const api = await req('GET', `${V3}/pushrules/`, undefined, u);
    assert.deepEqual(data, api.body);
  });

  it('requires authentication', async () => {
    const res = await server.request('GET', `${V3}/pushrules/`);
    assert.equal(res.status, 401);
    assert.equal(res.body.errcode, 'M_MISSING_TOKEN');
  });
});

describe('Pushers (spec: pusher.yaml)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  const pusher = (over: Record<string, unknown> = {}) => ({
    pushkey: 'pk1',
    kind: 'http',
    app_id: 'com.example.app',
    app_display_name: 'Example',
    device_display_name: 'Phone',
    lang: 'en',
    data: { url: 'https://push.example.com/_matrix/push/v1/notify', format: 'event_id_only' },
    ...over,
  });

  it('POST /pushers/set stores a pusher that GET /pushers lists; kind null deletes it', async () => {
    const u = await server.registerUser();
    assert.deepEqual((await server.request('GET', `${V3}/pushers`, { token: u.accessToken })).body, { pushers: [] });
    assert.equal((await server.request('POST', `${V3}/pushers/set`, { token: u.accessToken, body: pusher() })).status, 200);
    const list = await server.request('GET', `${V3}/pushers`, { token: u.accessToken });
    const { append: _append, ...expected } = pusher() as Record<string, unknown>;
    void _append;
    assert.deepEqual(list.body.pushers, [expected]);
    assert.equal((await server.request('POST', `${V3}/pushers/set`, { token: u.accessToken, body: { pushkey: 'pk1', app_id: 'com.example.app', kind: null } })).status, 200);
    assert.deepEqual((await server.request('GET', `${V3}/pushers`, { token: u.accessToken })).body, { pushers: [] });
  });

  it('without append, the same app_id and pushkey for another user replaces theirs', async () => {
    const a = await server.registerUser();
    const b = await server.registerUser();
    await server.request('POST', `${V3}/pushers/set`, { token: a.accessToken, body: pusher({ pushkey: 'shared' }) });
    await server.request('POST', `${V3}/pushers/set`, { token: b.accessToken, body: pusher({ pushkey: 'shared', append: true }) });
    assert.equal((await server.request('GET', `${V3}/pushers`, { token: a.accessToken })).body.pushers.length, 1, 'append keeps others');
    await server.request('POST', `${V3}/pushers/set`, { token: b.accessToken, body: pusher({ pushkey: 'shared' }) });
    assert.equal((await server.request('GET', `${V3}/pushers`, { token: a.accessToken })).body.pushers.length, 0);
    assert.equal((await server.request('GET', `${V3}/pushers`, { token: b.accessToken })).body.pushers.length, 1);
  });

  it('validation: missing fields M_MISSING_PARAM, bad URL or oversized ids M_INVALID_PARAM, wrong types M_BAD_JSON', async () => {
    const u = await server.registerUser();
    const set = (body: unknown) => server.request('POST', `${V3}/pushers/set`, { token: u.accessToken, body });
    const { lang: _l, data: _d, ...noLang } = pusher();
    void [_l, _d];
    const missing = await set(noLang);
    assert.equal(missing.status, 400);
    assert.equal(missing.body.errcode, 'M_MISSING_PARAM');
    const badUrl = await set(pusher({ data: { url: 'https://push.example.com/other' } }));
    assert.equal(badUrl.status, 400);
    assert.equal(badUrl.body.errcode, 'M_INVALID_PARAM');
    const longApp = await set(pusher({ app_id: 'x'.repeat(65) }));
    assert.equal(longApp.status, 400);
    assert.equal(longApp.body.errcode, 'M_INVALID_PARAM');
    const wrongType = await set(pusher({ pushkey: 5 }));
    assert.equal(wrongType.status, 400);
    assert.equal(wrongType.body.errcode, 'M_BAD_JSON');
    assert.deepEqual((await server.request('GET', `${V3}/pushers`, { token: u.accessToken })).body, { pushers: [] });
  });
});
