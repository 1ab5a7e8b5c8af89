// How a stretch of the current-state stream becomes user directory changes: the last change at
// each key wins, users of this server and of others go to their own tables, a key removed by
// state resolution counts as a leave (or an unset value), and redacted profiles lose their name.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject } from '../../src/core/types.js';
import { directoryChanges, eventsToRead, redactedProfiles, redactionTarget } from '../../src/directory/remote-users-changes.js';
import type { CurrentStateDeltaRow } from '../../src/rooms/tables.js';

const R = '!r:here.test';
const delta = (stream_pos: number, type: string, state_key: string, event_id: string, membership: string | null = null): CurrentStateDeltaRow => ({
  stream_pos, room_id: R, type, state_key, event_id, membership,
});

describe('user directory changes from current-state deltas', () => {
  const contents = new Map<string, JsonObject>([
    ['$j1', { membership: 'join', displayname: 'Old Name' }],
    ['$j2', { membership: 'join', displayname: 'Ána Núñez', avatar_url: 'mxc://far.test/a' }],
    ['$jr', { join_rule: 'public' }],
    ['$hv', { history_visibility: 'world_readable' }],
    ['$bad', { membership: 'join', displayname: 42 }],
  ]);
  const contentOf = (id: string) => contents.get(id);

  it('keeps the last change at each key, in stream order', () => {
    const c = directoryChanges(
      [
        delta(1, 'm.room.member', '@ana:far.test', '$j1', 'join'),
        delta(2, 'm.room.member', '@ana:far.test', '$l', 'leave'),
        delta(3, 'm.room.member', '@ana:far.test', '$j2', 'join'),
        delta(4, 'm.room.member', '@bo:far.test', '$j9', 'join'),
        delta(5, 'm.room.member', '@bo:far.test', '$l2', 'ban'),
      ],
      'here.test',
      contentOf,
    );
    assert.deepEqual(c.remoteJoined, [
      { room_id: R, user_id: '@ana:far.test', event_id: '$j2', display_name: 'Ána Núñez', avatar_url: 'mxc://far.test/a', search_text: ' ana far test nunez', stream_pos: 3 },
    ]);
    assert.deepEqual(c.remoteGone, [{ room_id: R, user_id: '@bo:far.test' }]);
  });

  it('a key removed by state resolution is a leave, or an unset room setting', () => {
    const c = directoryChanges(
      [delta(7, 'm.room.member', '@ana:far.test', '', 'leave'), delta(7, 'm.room.member', '@me:here.test', '', 'leave'), delta(7, 'm.room.join_rules', '', '')],
      'here.test',
      contentOf,
    );
    assert.deepEqual(c.remoteGone, [{ room_id: R, user_id: '@ana:far.test' }]);
    assert.deepEqual(c.localGone, [{ room_id: R, user_id: '@me:here.test' }]);
    assert.deepEqual(c.joinRules, [{ room_id: R, value: null }]);
  });

  it('users of this server go to the local table; room settings are read from their events', () => {
    const c = directoryChanges(
      [delta(1, 'm.room.member', '@me:here.test', '$m', 'join'), delta(2, 'm.room.join_rules', '', '$jr'), delta(3, 'm.room.history_visibility', '', '$hv'), delta(4, 'm.room.name', '', '$n')],
      'here.test',
      contentOf,
    );
    assert.deepEqual(c.localJoined, [{ room_id: R, user_id: '@me:here.test' }]);
    assert.deepEqual(c.remoteJoined, []);
    assert.deepEqual(c.joinRules, [{ room_id: R, value: 'public' }]);
    assert.deepEqual(c.historyVisibility, [{ room_id: R, value: 'world_readable' }]);
  });

  it('a display name that is not a string, or an event not found, gives no name', () => {
    const c = directoryChanges([delta(1, 'm.room.member', '@x:far.test', '$bad', 'join'), delta(2, 'm.room.member', '@y:far.test', '$gone', 'join')], 'here.test', contentOf);
    assert.deepEqual(c.remoteJoined.map((r) => [r.display_name, r.search_text]), [[null, ' x far test'], [null, ' y far test']]);
  });

  it('reads the events of remote joins and room settings only', () => {
    const ids = eventsToRead(
      [delta(1, 'm.room.member', '@me:here.test', '$m', 'join'), delta(2, 'm.room.member', '@a:far.test', '$a', 'join'), delta(3, 'm.room.member', '@b:far.test', '$b', 'leave'), delta(4, 'm.room.join_rules', '', '$jr'), delta(5, 'm.room.member', '@c:far.test', '', 'leave')],
      'here.test',
    );
    assert.deepEqual(ids, ['$a', '$jr']);
  });

  it('a redacted member event leaves the user id words only', () => {
    const pruned = redactedProfiles(new Map([['$j2', '@ana:far.test']]), () => ({ membership: 'join' }));
    assert.deepEqual(pruned, [{ event_id: '$j2', display_name: null, avatar_url: null, search_text: ' ana far test' }]);
    assert.equal(redactionTarget({ redacts: '$t' }), '$t', 'before room version 11');
    assert.equal(redactionTarget({ content: { redacts: '$t' } }), '$t', 'from room version 11');
    assert.equal(redactionTarget({ content: {} }), undefined);
  });
});
