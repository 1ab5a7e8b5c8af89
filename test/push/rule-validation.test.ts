import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

describe('Push rule edits are validated with 400 errors (pushrules.yaml; modules/push.md "Actions", "Tweaks")', () => {
  let server: TestServer;
  let alice: TestUser;
  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
  });
  after(async () => {
    await server.stop();
  });

  const put = (path: string, body: unknown) => server.request('PUT', `${V3}/pushrules/global/${path}`, { token: alice.accessToken, body });
  const cond = [{ kind: 'event_match', key: 'type', pattern: 'm.room.message' }];

  const cases: [string, string, unknown, number, string][] = [
    ['an unknown kind', 'sideways/r1', { actions: ['notify'], conditions: cond }, 400, 'M_INVALID_PARAM'],
    ['an unknown action', 'override/r1', { actions: ['explode'], conditions: cond }, 400, 'M_BAD_JSON'],
    ['actions that are not a list', 'override/r1', { actions: 'notify', conditions: cond }, 400, 'M_BAD_JSON'],
    ['a sound tweak without a string', 'override/r1', { actions: ['notify', { set_tweak: 'sound', value: 3 }], conditions: cond }, 400, 'M_BAD_JSON'],
    ['a highlight tweak with a string', 'override/r1', { actions: [{ set_tweak: 'highlight', value: 'yes' }], conditions: cond }, 400, 'M_BAD_JSON'],
    ['a condition without kind', 'override/r1', { actions: ['notify'], conditions: [{ key: 'type' }] }, 400, 'M_BAD_JSON'],
    ['a content rule without pattern', 'content/r1', { actions: ['notify'] }, 400, 'M_MISSING_PARAM'],
    ['a reserved rule id', 'override/.m.rule.mine', { actions: ['notify'], conditions: cond }, 400, 'M_INVALID_PARAM'],
    ['an unknown before anchor', 'override/r1?before=nope', { actions: ['notify'], conditions: cond }, 400, 'M_UNKNOWN'],
    ['enabled that is not a boolean', 'override/.m.rule.master/enabled', { enabled: 'yes' }, 400, 'M_BAD_JSON'],
    ['actions of a missing rule', 'override/missing/actions', { actions: ['notify'] }, 404, 'M_NOT_FOUND'],
  ];
  for (const [what, path, body, status, errcode] of cases) {
    it(`refuses ${what} with ${status} ${errcode}`, async () => {
      const res = await put(path, body);
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.errcode, errcode);
    });
  }

  it('accepts the legacy dont_notify action and tweaks it does not know (dropped / passed on)', async () => {
    const res = await put('override/ok', { actions: ['dont_notify', { set_tweak: 'custom', value: { a: 1 } }], conditions: cond });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const got = await server.request('GET', `${V3}/pushrules/global/override/ok/actions`, { token: alice.accessToken });
    assert.deepEqual(got.body.actions, [{ set_tweak: 'custom', value: { a: 1 } }]);
  });
});
