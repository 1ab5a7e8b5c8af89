/**
 * The response conformance layer (test/helpers/spec-schemas.ts): it finds the operation of a
 * concrete path, flags a body the spec's schema rejects and passes one it accepts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkResponse, matchOperation, specPresent, CS_DIR } from '../helpers/spec-schemas.js';

describe('spec response schemas', { skip: specPresent ? false : `no spec at ${CS_DIR}` }, () => {
  it('matches concrete paths to the most literal template', () => {
    assert.equal(matchOperation('GET', '/_matrix/client/v3/account/whoami?x=1')?.op, 'getTokenOwner');
    assert.equal(matchOperation('GET', '/_matrix/client/v3/rooms/!a%3Ab/state/m.room.name/')?.op, 'getRoomStateWithKey');
    assert.equal(matchOperation('GET', '/_matrix/client/v3/rooms/!a%3Ab/state')?.op, 'getRoomState');
    assert.equal(matchOperation('GET', '/_matrix/client/v1/media/config')?.op, 'getConfigAuthed');
    assert.equal(matchOperation('GET', '/_matrix/federation/v1/version'), undefined);
  });

  it('flags a missing required field and a wrong type, and accepts a conforming body', () => {
    const missing = checkResponse('GET', '/_matrix/client/v3/account/whoami', 200, { device_id: 'D' });
    assert.ok(missing?.errors.some((e) => e.keyword === 'required'), JSON.stringify(missing));
    const wrongType = checkResponse('GET', '/_matrix/client/v3/account/whoami', 200, { user_id: 5 });
    assert.ok(wrongType?.errors.some((e) => e.keyword === 'type'), JSON.stringify(wrongType));
    assert.equal(checkResponse('GET', '/_matrix/client/v3/account/whoami', 200, { user_id: '@a:b', device_id: 'D' }), undefined);
  });

  it('follows references to shared responses and event schemas', () => {
    // 401 on whoami is an error response given by reference to definitions/errors.
    const bad = checkResponse('GET', '/_matrix/client/v3/account/whoami', 401, { error: 'x' });
    assert.ok(bad?.errors.some((e) => e.keyword === 'required'), JSON.stringify(bad));
    assert.equal(checkResponse('GET', '/_matrix/client/v3/account/whoami', 401, { errcode: 'M_UNKNOWN_TOKEN', error: 'x' }), undefined);
    // A client event lacks its sender: the schema comes from definitions/client_event.yaml.
    const event = { type: 'm.room.message', event_id: '$e', room_id: '!r:b', origin_server_ts: 1, content: {} };
    const noSender = checkResponse('GET', '/_matrix/client/v3/rooms/!r%3Ab/event/%24e', 200, event);
    assert.ok(noSender?.errors.some((e) => e.keyword === 'required'), JSON.stringify(noSender));
    assert.equal(checkResponse('GET', '/_matrix/client/v3/rooms/!r%3Ab/event/%24e', 200, { ...event, sender: '@a:b' }), undefined);
  });

  it('checks a missing or unknown token as a standard error, other 401s as documented', () => {
    const path = '/_matrix/client/v3/account/password';
    assert.equal(checkResponse('POST', path, 401, { errcode: 'M_MISSING_TOKEN', error: 'x' }), undefined);
    assert.ok(checkResponse('POST', path, 401, { errcode: 'M_UNKNOWN_TOKEN' }) === undefined);
    // A UIA 401 must carry its flows.
    assert.ok(checkResponse('POST', path, 401, { errcode: 'M_FORBIDDEN', error: 'wrong password' }));
  });

  it('applies an exception only where it is listed', () => {
    const send = '/_matrix/client/v3/rooms/!r%3Ab/send/m.room.message/t1';
    assert.equal(checkResponse('PUT', `${send}?org.matrix.msc4140.delay=10`, 200, { delay_id: 'd' }), undefined);
    assert.ok(checkResponse('PUT', send, 200, { delay_id: 'd' }), 'a plain send must answer an event_id');
    assert.ok(checkResponse('GET', '/_matrix/client/v3/voip/turnServer', 200, { uris: [] }), 'only the empty TURN answer is excepted');
  });

  it('skips statuses the spec does not document', () => {
    assert.equal(checkResponse('GET', '/_matrix/client/v3/account/whoami', 418, { nothing: true }), undefined);
  });
});
