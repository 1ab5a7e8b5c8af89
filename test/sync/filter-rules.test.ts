import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileFilter, projectFields, splitFieldPath } from '../../src/sync/filter-rules.js';
import { clampToken, formatSyncToken, syncTokensWithEvents, tryParseSyncToken } from '../../src/sync/token.js';

describe('filter rules (spec: Filtering, EventFilter)', () => {
  it('types and not_types take * as a wildcard; not_types wins', () => {
    const f = compileFilter({ room: { timeline: { types: ['m.room.*', 'org.example.exact'], not_types: ['m.room.member'] } } }).timeline;
    assert.equal(f.matches({ type: 'm.room.message' }), true);
    assert.equal(f.matches({ type: 'org.example.exact' }), true);
    assert.equal(f.matches({ type: 'org.example.exactly' }), false);
    assert.equal(f.matches({ type: 'm.room.member' }), false, 'excluded even though listed');
    assert.equal(f.matches({ type: 'm.roomy' }), false);
  });

  it('senders and not_senders; rooms and not_rooms', () => {
    const f = compileFilter({ room: { rooms: ['!a:x', '!b:x'], not_rooms: ['!b:x'], timeline: { senders: ['@a:x'], not_senders: ['@a:x', '@c:x'] } } });
    assert.equal(f.allowsRoom('!a:x'), true);
    assert.equal(f.allowsRoom('!b:x'), false);
    assert.equal(f.allowsRoom('!c:x'), false);
    assert.equal(f.timeline.matches({ type: 't', sender: '@a:x' }), false);
    const g = compileFilter({ room: { timeline: { senders: ['@a:x'] } } }).timeline;
    assert.equal(g.matches({ type: 't', sender: '@a:x' }), true);
    assert.equal(g.matches({ type: 't', sender: '@b:x' }), false);
  });

  it('contains_url selects events by a url in their content', () => {
    const f = compileFilter({ room: { timeline: { contains_url: true } } }).timeline;
    assert.equal(f.matches({ type: 'm.room.message', content: { url: 'mxc://x/y' } }), true);
    assert.equal(f.matches({ type: 'm.room.message', content: { body: 'x' } }), false);
  });

  it('the timeline limit defaults to 10', () => {
    assert.equal(compileFilter({}).timelineLimit, 10);
    assert.equal(compileFilter({ room: { timeline: { limit: 3 } } }).timelineLimit, 3);
  });

  it('event_fields paths escape dots and backslashes (appendix: dot-separated property paths)', () => {
    assert.deepEqual(splitFieldPath('content.m\\.relates_to'), ['content', 'm.relates_to']);
    assert.deepEqual(splitFieldPath('content.m\\\\foo'), ['content', 'm\\foo']);
    assert.deepEqual(splitFieldPath('content.a\\xb'), ['content', 'a\\xb']);
    const ev = { type: 't', sender: '@a:x', content: { body: 'b', 'm.relates_to': { rel_type: 'r' }, other: 1 } };
    assert.deepEqual(projectFields(ev, [['type'], ['content', 'm.relates_to'], ['content', 'missing'], ['nope', 'deeper']]), {
      type: 't',
      content: { 'm.relates_to': { rel_type: 'r' } },
    });
  });
});

describe('sync tokens', () => {
  it('round-trip seven stream positions and reject anything else', () => {
    const t = { events: 1, to_device: 2, account_data: 3, receipts: 4, device_lists: 5, typing: 6, presence: 7 };
    assert.equal(formatSyncToken(t), 's1_2_3_4_5_6_7');
    assert.deepEqual(tryParseSyncToken('s1_2_3_4_5_6_7'), t);
    for (const bad of ['', 's', 's1_2_3_4_5_6', 's1_2_3_4_5_6_7_8', 't1_2_3_4_5_6_7', 's1_2_3_4_5_6_x', 's1_2_3_4_5_6_-7', 's1_2_3_4_5_6_1e3']) {
      assert.equal(tryParseSyncToken(bad), null, bad);
    }
  });

  it('a prev_batch written from the heads with another events position is the token formatSyncToken writes', () => {
    const heads = { events: 90, to_device: 2, account_data: 3, receipts: 4, device_lists: 5, typing: 6, presence: 7 };
    const at = syncTokensWithEvents(heads);
    for (const events of [0, 41, 90]) assert.equal(at(events), formatSyncToken({ ...heads, events }));
    assert.equal(at(41), 's41_2_3_4_5_6_7');
  });

  it('a token ahead of the stream heads is clamped to them', () => {
    const t = { events: 9, to_device: 2, account_data: 3, receipts: 4, device_lists: 5, typing: 6, presence: 7 };
    const heads = { events: 5, to_device: 5, account_data: 5, receipts: 5, device_lists: 5, typing: 5, presence: 5 };
    assert.deepEqual(clampToken(t, heads), { events: 5, to_device: 2, account_data: 3, receipts: 4, device_lists: 5, typing: 5, presence: 5 });
  });
});
