// The order a received batch is checked in: parents (prev and auth events) first, even when an
// event is given twice (a send_join answer lists events in both `state` and `auth_chain`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pdu } from '../../src/core/types.js';
import type { CheckedPdu } from '../../src/rooms/inbound/check-received.js';
import { causalOrder } from '../../src/rooms/inbound/receive.js';

function ev(eventId: string, auth: string[]): CheckedPdu {
  const pdu = { type: 'm.room.member', depth: 1, prev_events: [], auth_events: auth } as unknown as Pdu;
  return { eventId, pdu, redactedOnReceipt: false };
}

test('an event given twice is placed once, after all of its parents', () => {
  const create = ev('$a', []);
  const power = ev('$c', ['$a']);
  // Sorted by id alone, '$b' would come before its auth event '$c'.
  const member = ev('$b', ['$a', '$c']);
  const order = causalOrder([member, member, power, create, create]).map((e) => e.eventId);
  assert.deepEqual(order, ['$a', '$c', '$b']);
});
