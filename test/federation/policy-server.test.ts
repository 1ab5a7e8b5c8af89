// Policy Servers (spec v1.18, server-server API "Policy Servers"): a room whose m.room.policy names
// a server with a joined member has every event but that state event signed by it. Here ps.test
// is a Hearth server whose federation traffic passes through a proxy that also answers
// `POST /_matrix/policy/v1/sign` with its policy key (and refuses anything mentioning spam).
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { addEventSignature, finaliseEvent } from '../../src/core/event-format.js';
import { computeEventId } from '../../src/core/hashes.js';
import { generateSigningKey, publicKeyBase64 } from '../../src/core/signing.js';
import { stateKey, type Pdu } from '../../src/core/types.js';
import { signRequest } from '../../src/federation/x-matrix.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { C, createRoom, e, putState } from '../rooms/room-helpers.js';
import { eventually, F, freePort, httpServer, json } from './federation-helpers.js';

const POLICY_KEY = generateSigningKey('policy_server');
let a: TestServer;
let ps: TestServer;
let proxy: Awaited<ReturnType<typeof httpServer>>;
let alice: TestUser;
let psbot: TestUser;
let roomId: string;
const signRequests: Pdu[] = [];

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function policyOrForward(psUrl: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const raw = await body(req);
  if (req.method === 'POST' && req.url === '/_matrix/policy/v1/sign') {
    const pdu = JSON.parse(raw.toString()) as Pdu;
    signRequests.push(pdu);
    if (JSON.stringify(pdu.content).includes('spam')) return json(res, 400, { errcode: 'M_FORBIDDEN', error: 'This looks like spam' });
    const version = (await a.hs.ctx.services.rooms.core.versionOf(pdu.room_id))!;
    const signed = addEventSignature(pdu, version, 'ps.test', POLICY_KEY);
    return json(res, 200, { 'ps.test': { 'ed25519:policy_server': signed.signatures['ps.test']!['ed25519:policy_server'] } });
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
  const answer = await fetch(psUrl + req.url, { method: req.method, headers, body: raw.length > 0 ? raw : undefined });
  res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
  res.end(Buffer.from(await answer.arrayBuffer()));
}

before(async () => {
  const [pa, pp] = [await freePort(), await freePort()];
  proxy = await httpServer((req, res) => void policyOrForward(`http://127.0.0.1:${pp}`, req, res).catch(() => json(res, 500, {})));
  const resolve = { 'a.test': `http://127.0.0.1:${pa}`, 'ps.test': proxy.url };
  [a, ps] = await Promise.all([
    startTestServer({ serverName: 'a.test', config: { listen: `127.0.0.1:${pa}`, federation: { resolve } } }),
    startTestServer({ serverName: 'ps.test', config: { listen: `127.0.0.1:${pp}`, federation: { resolve: { ...resolve, 'ps.test': `http://127.0.0.1:${pp}` } } } }),
  ]);
  alice = await a.registerUser('alice');
  psbot = await ps.registerUser('psbot');
  roomId = await createRoom(a, alice, { preset: 'public_chat', room_version: '10' });
  const joined = await ps.request('POST', `${C}/join/${e(roomId)}?via=a.test`, { token: psbot.accessToken, body: {} });
  assert.equal(joined.status, 200, JSON.stringify(joined.body));
  await putState(a, alice, roomId, 'm.room.policy', '', { via: 'ps.test', public_keys: { ed25519: publicKeyBase64(POLICY_KEY) } });
});

after(async () => {
  await Promise.all([a?.stop(), ps?.stop()]);
  await proxy?.close();
});

const send = (text: string, txn: string) => a.request('PUT', `${C}/rooms/${e(roomId)}/send/m.room.message/${txn}`, { token: alice.accessToken, body: { msgtype: 'm.text', body: text } });
const bodies = async () => {
  const res = await a.request('GET', `${C}/rooms/${e(roomId)}/messages?dir=b&limit=50`, { token: alice.accessToken });
  return (res.body.chunk as { content: { body?: string } }[]).map((ev) => ev.content.body).filter(Boolean);
};

test('a local event is sent with the Policy Server signature, and a refused one is not sent at all', async () => {
  const ok = await send('hello, checked', 'p1');
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const stored = await a.hs.ctx.services.rooms.core.events.get(ok.body.event_id);
  assert.ok(stored?.pdu.signatures['ps.test']?.['ed25519:policy_server'], 'the stored event carries the policy signature');
  assert.ok(stored?.pdu.signatures['a.test'], 'and still its origin signature');
  assert.ok(signRequests.some((p) => (p.content as { body?: string }).body === 'hello, checked'));
  assert.ok(!signRequests.some((p) => p.type === 'm.room.policy'), 'the m.room.policy state event itself is never sent to be signed');

  const refused = await send('buy spam now', 'p2');
  assert.equal(refused.status, 400);
  assert.equal(refused.body.errcode, 'M_FORBIDDEN');
  assert.equal(refused.body.error, 'This looks like spam', "the Policy Server's error, as it gave it");
  assert.ok(!(await bodies()).includes('buy spam now'));
  // ps.test's copy of the room gets the signed event.
  await eventually(async () => {
    const res = await ps.request('GET', `${C}/rooms/${e(roomId)}/messages?dir=b&limit=50`, { token: psbot.accessToken });
    return (res.body.chunk as { content: { body?: string } }[]).some((ev) => ev.content.body === 'hello, checked');
  }, 'ps.test received the signed message');
});

test('a received event without a valid Policy Server signature is sent to it again: signed then, it is accepted; refused, it is soft-failed', async () => {
  const head = (await a.hs.ctx.services.rooms.core.heads.get(roomId))!;
  const state = (t: string, k: string) => head.state.get(stateKey(t, k));
  const authEvents = [state('m.room.create', ''), state('m.room.power_levels', ''), head.members.get(psbot.userId)?.eventId].filter((x): x is string => !!x);
  assert.equal(authEvents.length, 3, 'create, power levels and the sender membership');
  const depth = Math.max(...head.extremities.map((x) => x.depth)) + 1;
  const make = (text: string) =>
    finaliseEvent(
      {
        room_id: roomId,
        sender: psbot.userId,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: text },
        origin_server_ts: Date.now(),
        depth,
        prev_events: head.extremities.map((x) => x.eventId),
        auth_events: authEvents,
      },
      head.version,
      'ps.test',
      ps.hs.ctx.signingKey,
    ).pdu;
  // Spec: "If the Policy Server's signature is invalid or missing, the homeserver SHOULD ask for a
  // new signature." The first lacks one and the Policy Server gives it; the second it refuses.
  const unsigned = make('no policy signature yet');
  const spam = make('spam without a policy signature');
  const signed = addEventSignature(make('with a policy signature'), head.version, 'ps.test', POLICY_KEY);
  const asked = signRequests.length;
  const txn = { origin: 'ps.test', origin_server_ts: Date.now(), pdus: [unsigned, spam, signed] };
  const path = `${F}/send/policy-${Date.now()}`;
  const auth = signRequest({ method: 'PUT', uri: path, origin: 'ps.test', destination: 'a.test', content: txn }, ps.hs.ctx.signingKey);
  const res = await a.request('PUT', path, { body: txn, headers: { authorization: auth } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  await eventually(async () => (await bodies()).includes('with a policy signature'), 'the signed event is shown');
  const shown = await bodies();
  assert.ok(shown.includes('no policy signature yet'), 'the event the Policy Server signed when asked again is shown');
  assert.ok(!shown.includes('spam without a policy signature'), 'the one it refused is soft-failed: kept, not served');
  const askedNow = signRequests.slice(asked).map((p) => (p.content as { body?: string }).body);
  assert.deepEqual(askedNow.sort(), ['no policy signature yet', 'spam without a policy signature'], 'only the events lacking a signature were sent to be signed');
  const stored = await a.hs.ctx.services.rooms.core.events.get(computeEventId(unsigned, head.version));
  assert.ok(stored?.pdu.signatures['ps.test']?.['ed25519:policy_server'], 'the signature obtained is kept with the event');
});
