/**
 * Concrete URLs for the spec's path templates (`/rooms/{roomId}/event/{eventId}`), for tests
 * that call every operation of the OpenAPI files: path parameters are filled from the test's
 * fixtures, the rest with plausible values of the right grammar.
 */
import assert from 'node:assert/strict';

/** The fixtures a test made; every other path parameter gets a plausible constant. */
export interface EndpointFixtures {
  userId: string;
  roomId: string;
  eventId: string;
  deviceId: string;
  roomAlias: string;
  /** The server name and media id of an upload (mxc://serverName/mediaId). */
  serverName: string;
  mediaId: string;
  filterId: string;
}

export function pathValues(f: EndpointFixtures): Record<string, string> {
  return {
    ...f,
    roomIdOrAlias: f.roomId,
    fileName: 'a.txt',
    type: 'org.example.inventory',
    eventType: 'm.room.message',
    stateKey: 'x',
    tag: 'u.inventory',
    version: '1',
    sessionId: 'session',
    kind: 'global',
    scope: 'global',
    ruleId: '.m.rule.master',
    receiptType: 'm.read',
    relType: 'm.reference',
    protocol: 'irc',
    appserviceId: 'inventory',
    networkId: 'inventory',
    idpId: 'inventory',
    keyName: 'org.example.inventory',
  };
}

let txn = 0;

/** `template` with each `{param}` filled from `values` (a fresh `{txnId}` each time), percent-encoded. */
export function fillPath(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (name === 'txnId') return `inv${process.pid}_${++txn}`;
    const v = values[name];
    assert.ok(v !== undefined, `no value for path parameter {${name}} of ${template}`);
    return encodeURIComponent(v);
  });
}
