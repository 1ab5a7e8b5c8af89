/**
 * Bad input, in bulk, to every client-server endpoint of the spec that Hearth
 * serves (spec-endpoints.ts is the table, read from the spec's OpenAPI files).
 * Spec rules checked (client-server-api "Standard error response" and each
 * operation's responses):
 *  - an error is a JSON object with an `errcode`, and a client's mistake is never a 5xx;
 *  - a body that is not JSON is M_NOT_JSON, JSON of the wrong shape M_BAD_JSON
 *    (or M_MISSING_PARAM / M_INVALID_PARAM, or an errcode the operation names);
 *  - a body over the server's limit is 413 M_TOO_LARGE;
 *  - no access token is 401 M_MISSING_TOKEN, an unknown one 401 M_UNKNOWN_TOKEN;
 *  - unknown rooms, users, events are M_NOT_FOUND or M_FORBIDDEN; acting on another
 *    user's data, or without power in a room, is 403 M_FORBIDDEN;
 *  - a query parameter of the wrong type or value is 400 M_INVALID_PARAM.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { SPEC_ENDPOINTS, type SpecEndpoint, type SpecField } from './spec-endpoints.js';

const MAX_REQUEST_BYTES = 65536;

/**
 * What a case accepts: a 4xx (of `status` if given) with one of `codes`, or a 2xx
 * too when `orOk`; any 4xx; or anything but a 5xx.
 */
type Expect = { status?: number; codes?: string[]; orOk?: boolean } | 'any4xx' | 'no5xx';

interface Case {
  label: string;
  method: string;
  path: string;
  token?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  expect: Expect;
}

interface Outcome {
  c: Case;
  status: number;
  body: unknown;
}

// ---------------------------------------------------------------- server and fixtures

const server: TestServer = await startTestServer({ config: { max_request_bytes: MAX_REQUEST_BYTES } });

interface Fixtures {
  alice: TestUser;
  bob: TestUser;
  carol: TestUser;
  /** alice's private room; bob is joined with power 0, carol is not in it. */
  roomId?: string;
  /** A message alice sent in roomId. */
  eventId?: string;
  /** An alias alice made for roomId. */
  alias?: string;
  /** A second room like roomId, with a message: lenient answers to odd optional fields may change it (leave, kick, redact). */
  scratchRoomId?: string;
  scratchEventId?: string;
  setupProblems: string[];
}

async function setUp(): Promise<Fixtures> {
  const fx: Fixtures = {
    alice: await server.registerUser(`alice${process.pid}`),
    bob: await server.registerUser(`bob${process.pid}`),
    carol: await server.registerUser(`carol${process.pid}`),
    setupProblems: [],
  };
  const step = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      fx.setupProblems.push(`${what}: ${(e as Error).message}`);
    }
  };
  const ok = (res: { status: number; body: unknown }, what: string) => {
    if (res.status !== 200) throw new Error(`${what} answered ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as any;
  };
  await step('alice creates a room', async () => {
    const b = ok(await server.request('POST', '/_matrix/client/v3/createRoom', { token: fx.alice.accessToken, body: { preset: 'private_chat', name: 'bad input' } }), 'createRoom');
    fx.roomId = b.room_id;
  });
  if (!fx.roomId) return fx;
  const r = encodeURIComponent(fx.roomId);
  await step('alice invites bob, bob joins', async () => {
    ok(await server.request('POST', `/_matrix/client/v3/rooms/${r}/invite`, { token: fx.alice.accessToken, body: { user_id: fx.bob.userId } }), 'invite');
    ok(await server.request('POST', `/_matrix/client/v3/rooms/${r}/join`, { token: fx.bob.accessToken, body: {} }), 'join');
  });
  await step('alice sends a message', async () => {
    const b = ok(await server.request('PUT', `/_matrix/client/v3/rooms/${r}/send/m.room.message/fixture1`, { token: fx.alice.accessToken, body: { msgtype: 'm.text', body: 'hello' } }), 'send');
    fx.eventId = b.event_id;
  });
  await step('alice makes a scratch room with bob in it and a message', async () => {
    const b = ok(await server.request('POST', '/_matrix/client/v3/createRoom', { token: fx.alice.accessToken, body: { preset: 'private_chat', invite: [fx.bob.userId] } }), 'createRoom');
    const s = encodeURIComponent(b.room_id);
    ok(await server.request('POST', `/_matrix/client/v3/rooms/${s}/join`, { token: fx.bob.accessToken, body: {} }), 'join');
    const m = ok(await server.request('PUT', `/_matrix/client/v3/rooms/${s}/send/m.room.message/scratch1`, { token: fx.alice.accessToken, body: { msgtype: 'm.text', body: 'scratch' } }), 'send');
    fx.scratchRoomId = b.room_id;
    fx.scratchEventId = m.event_id;
  });
  await step('alice makes an alias', async () => {
    const alias = `#bad-input-${process.pid}:${server.serverName}`;
    ok(await server.request('PUT', `/_matrix/client/v3/directory/room/${encodeURIComponent(alias)}`, { token: fx.alice.accessToken, body: { room_id: fx.roomId } }), 'alias');
    fx.alias = alias;
  });
  return fx;
}

// If even the users cannot be made, stop the server so the failing file still exits.
const fx = await setUp().catch(async (e: unknown) => {
  await server.stop();
  throw e;
});

// ---------------------------------------------------------------- requests, counted

const outcomes: Outcome[] = [];
const exercised = new Set<string>();
let txn = 0;

const REQUEST_TIMEOUT_MS = 10_000;

/** Like server.request, with a time limit: a request the server never answers is a failure too. */
async function send(c: Case): Promise<Outcome> {
  const headers: Record<string, string> = { ...c.headers };
  if (c.token) headers.authorization = `Bearer ${c.token}`;
  let body: string | undefined = c.rawBody;
  if (body === undefined && c.body !== undefined) {
    body = JSON.stringify(c.body);
    headers['content-type'] ??= 'application/json';
  }
  let o: Outcome;
  try {
    const res = await fetch(server.url + c.path, { method: c.method, headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text.length ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    o = { c, status: res.status, body: parsed };
  } catch (e) {
    const err = e as Error;
    // No answer at all is not something the spec allows either.
    o = { c, status: 599, body: err.name === 'TimeoutError' ? `no answer within ${REQUEST_TIMEOUT_MS} ms` : `network error: ${err.message}` };
  }
  outcomes.push(o);
  return o;
}

/** Why an outcome breaks the spec, or undefined when it is fine. */
function problem(o: Outcome): string | undefined {
  const { status, body, c } = o;
  if (status >= 500) return `server error ${status}`;
  if (c.expect === 'no5xx') return status >= 400 ? shapeProblem(body) : undefined;
  if (status < 400) return typeof c.expect === 'object' && c.expect.orOk ? undefined : `accepted with ${status}, expected a 4xx`;
  const shape = shapeProblem(body);
  if (shape) return shape;
  if (c.expect === 'any4xx') return undefined;
  const errcode = (body as { errcode: string }).errcode;
  if (c.expect.status !== undefined && status !== c.expect.status) {
    // A UIA endpoint may ask for authentication before it looks at the body.
    if (!(status === 401 && isUiaChallenge(body))) return `status ${status} (${errcode}), expected ${c.expect.status}`;
    return undefined;
  }
  if (c.expect.codes && !c.expect.codes.includes(errcode)) {
    if (status === 401 && isUiaChallenge(body)) return undefined;
    return `errcode ${errcode} (status ${status}), expected one of ${c.expect.codes.join(' ')}`;
  }
  return undefined;
}

function shapeProblem(body: unknown): string | undefined {
  const b = body as { errcode?: unknown } | undefined;
  if (!b || typeof b !== 'object' || typeof b.errcode !== 'string' || !/^M_[A-Z_]+$/.test(b.errcode)) {
    if (isUiaChallenge(body)) return undefined;
    return `error body is not a Matrix error: ${JSON.stringify(body)?.slice(0, 200)}`;
  }
  return undefined;
}

function isUiaChallenge(body: unknown): boolean {
  return !!body && typeof body === 'object' && Array.isArray((body as { flows?: unknown }).flows);
}

function describeOutcome(o: Outcome, why: string): string {
  const { c } = o;
  const req = c.rawBody !== undefined ? ` raw=${JSON.stringify(c.rawBody.slice(0, 80))}` : c.body !== undefined ? ` body=${JSON.stringify(c.body).slice(0, 160)}` : '';
  const tok = c.token ? (c.token === fx.alice.accessToken ? ' (alice)' : c.token === fx.bob.accessToken ? ' (bob)' : c.token === fx.carol.accessToken ? ' (carol)' : ' (bad token)') : ' (no token)';
  return `[${c.label}] ${c.method} ${c.path}${tok}${req} -> ${o.status} ${JSON.stringify(o.body)?.slice(0, 200)}: ${why}`;
}

async function runCases(cases: Case[]): Promise<string[]> {
  const failures: string[] = [];
  for (const c of cases) {
    const o = await send(c);
    const why = problem(o);
    if (why) failures.push(describeOutcome(o, why));
  }
  return failures;
}

// ---------------------------------------------------------------- building cases from the table

const enc = encodeURIComponent;

/** A valid-looking value for each path parameter, so that only the part under test is wrong. */
function paramValue(name: string): string {
  switch (name) {
    case 'roomId':
    case 'roomIdOrAlias':
      return fx.roomId ?? `!missing:${server.serverName}`;
    case 'userId':
      return fx.alice.userId;
    case 'eventId':
      return fx.eventId ?? '$missing';
    case 'deviceId':
      return fx.alice.deviceId;
    case 'roomAlias':
      return `#fresh-${process.pid}-${++txn}:${server.serverName}`;
    case 'txnId':
      return `bad-input-${++txn}`;
    case 'eventType':
    case 'type':
      return 'org.hearth.test';
    case 'stateKey':
      return 'k';
    case 'kind':
      return 'override';
    case 'ruleId':
      return 'org.hearth.rule';
    case 'receiptType':
      return 'm.read';
    case 'relType':
      return 'm.reference';
    case 'keyName':
      return 'displayname';
    case 'tag':
      return 'u.work';
    case 'serverName':
      return server.serverName;
    case 'version':
      return '1';
    case 'filterId':
      return '0';
    default:
      return name;
  }
}

function fill(path: string, override: Record<string, string> = {}): string {
  return path.replace(/\{(\w+)\}/g, (_, n: string) => enc(override[n] ?? paramValue(n)));
}

function fastifyPattern(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

function served(ep: SpecEndpoint): boolean {
  // Routes are matched with ignoreTrailingSlash: the spec's `/pushrules/` is served as `/pushrules`.
  const url = fastifyPattern(ep.p);
  return server.hs.app.hasRoute({ method: ep.m, url }) || server.hs.app.hasRoute({ method: ep.m, url: url.replace(/\/$/, '') });
}

function validValue(f: SpecField): unknown {
  if (f.enum?.length) return f.enum[0];
  switch (f.name) {
    case 'user_id':
      return fx.bob.userId;
    case 'room_id':
      return fx.roomId ?? '!missing:localhost';
  }
  switch (f.type.split('|')[0]) {
    case 'string':
      return 'x';
    case 'integer':
    case 'number':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'object':
      return {};
    default:
      return 'x';
  }
}

/** A value of a type the field does not allow. */
function wrongValue(f: SpecField): unknown {
  const t = f.type.split('|');
  if (t.includes('string')) return 12345;
  if (t.includes('object')) return 'not an object';
  if (t.includes('array')) return 'not an array';
  if (t.includes('integer') || t.includes('number')) return 'not a number';
  if (t.includes('boolean')) return 'yes';
  return undefined;
}

/** Bodies that an operation needs beyond its required fields to be otherwise valid. */
const BASE_BODIES: Record<string, () => Record<string, unknown>> = {
  setProfileField: () => ({ displayname: 'Mallory' }),
  setTyping: () => ({ typing: true, timeout: 1000 }),
  sendMessage: () => ({ msgtype: 'm.text', body: 'x' }),
  login: () => ({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'nobody' }, password: 'x' }),
  setReadMarker: () => ({ 'm.fully_read': fx.eventId ?? '$missing' }),
  setPushRule: () => ({ actions: ['notify'], conditions: [] }),
  postPusher: () => ({ kind: 'http', app_id: 'a', pushkey: 'p', app_display_name: 'a', device_display_name: 'd', lang: 'en', data: { url: 'https://push.example/_matrix/push/v1/notify' } }),
};

function baseBody(ep: SpecEndpoint): Record<string, unknown> {
  const b: Record<string, unknown> = BASE_BODIES[ep.op]?.() ?? {};
  if (Array.isArray(ep.body)) for (const f of ep.body) if (!(f.name in b)) b[f.name] = validValue(f);
  return b;
}

function baseQuery(ep: SpecEndpoint, override: Record<string, string> = {}): string {
  const parts: string[] = [];
  for (const q of ep.query ?? []) {
    if (q.name in override) continue;
    if (q.required) parts.push(`${enc(q.name)}=${enc(String(q.enum?.[0] ?? (q.type === 'integer' ? 1 : q.type === 'boolean' ? 'true' : 'x')))}`);
  }
  for (const [k, v] of Object.entries(override)) if (v !== '\u0000omit') parts.push(`${enc(k)}=${enc(v)}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** The codes a case accepts: its own, the operation's, and for 3PID endpoints the server's refusal of 3PIDs altogether. */
const errs = (ep: SpecEndpoint, ...base: string[]) =>
  [...new Set([...base, ...(ep.errcodes ?? []).filter((c) => c !== 'M_LIMIT_EXCEEDED'), ...(/\/3pid\b/.test(ep.p) ? ['M_THREEPID_DENIED'] : [])])];
const SHAPE_CODES = ['M_BAD_JSON', 'M_MISSING_PARAM', 'M_INVALID_PARAM'];
const hasJsonBody = (ep: SpecEndpoint) => (ep.m === 'POST' || ep.m === 'PUT') && ep.body !== 'raw';

/** Endpoints that only ever act on the caller's own data, named by a {userId} in the path. */
function ownUserOnly(ep: SpecEndpoint): boolean {
  if (!ep.p.includes('{userId}')) return false;
  if (ep.m === 'GET' && /\/(profile|presence)\//.test(ep.p)) return false;
  if (/\/users\/\{userId\}\/report$/.test(ep.p)) return false;
  return true;
}

function casesFor(ep: SpecEndpoint): Case[] {
  const cases: Case[] = [];
  const url = fill(ep.p) + baseQuery(ep);
  const alice = fx.alice.accessToken;
  const body = hasJsonBody(ep) ? baseBody(ep) : undefined;
  const json = { 'content-type': 'application/json' };

  // Access tokens.
  if (ep.auth === 'required') {
    cases.push({ label: 'no access token', method: ep.m, path: url, body, expect: { status: 401, codes: ['M_MISSING_TOKEN'] } });
  }
  if (ep.auth !== 'none') {
    // "When credentials are required but missing or invalid": an endpoint where they are optional may ignore a bad one.
    const optional = ep.auth === 'optional';
    cases.push({ label: 'unknown access token', method: ep.m, path: url, body, token: 'syt_not_a_real_token', expect: { status: 401, codes: ['M_UNKNOWN_TOKEN'], orOk: optional } });
    // Since v1.20 a token in the query string is not supported: ignored (missing) or, for older clients, checked (unknown).
    const sep = url.includes('?') ? '&' : '?';
    cases.push({ label: 'unknown access_token in the query', method: ep.m, path: `${url}${sep}access_token=nope`, body, expect: { status: 401, codes: ['M_UNKNOWN_TOKEN', 'M_MISSING_TOKEN'], orOk: optional } });
  }
  const token = ep.auth === 'none' ? undefined : alice;

  // Bodies.
  if (hasJsonBody(ep)) {
    cases.push({ label: 'malformed JSON', method: ep.m, path: url, token, rawBody: '{', headers: json, expect: { status: 400, codes: ['M_NOT_JSON'] } });
    cases.push({ label: 'truncated JSON', method: ep.m, path: url, token, rawBody: '{"a": [1, 2', headers: json, expect: { status: 400, codes: ['M_NOT_JSON'] } });
    cases.push({ label: 'JSON that is not an object', method: ep.m, path: url, token, rawBody: '[1, 2, 3]', headers: json, expect: { status: 400, codes: ['M_BAD_JSON', 'M_NOT_JSON'] } });
    cases.push({ label: 'a JSON string body', method: ep.m, path: url, token, rawBody: '"hello"', headers: json, expect: { status: 400, codes: ['M_BAD_JSON', 'M_NOT_JSON'] } });
    const big = JSON.stringify({ ...body, padding: 'x'.repeat(MAX_REQUEST_BYTES + 1024) });
    cases.push({ label: 'body over max_request_bytes', method: ep.m, path: fill(ep.p) + baseQuery(ep), token, rawBody: big, headers: json, expect: { status: 413, codes: ['M_TOO_LARGE'] } });
    const required = Array.isArray(ep.body) ? ep.body : [];
    if (required.length > 0) {
      cases.push({ label: 'required fields missing', method: ep.m, path: fill(ep.p) + baseQuery(ep), token, body: {}, expect: { codes: errs(ep, ...SHAPE_CODES) } });
    }
    for (const f of required) {
      const wrong = wrongValue(f);
      if (wrong === undefined) continue;
      cases.push({
        label: `${f.name} of the wrong type (${typeof wrong} for ${f.type})`,
        method: ep.m,
        path: fill(ep.p) + baseQuery(ep),
        token,
        body: { ...baseBody(ep), [f.name]: wrong },
        expect: { codes: errs(ep, ...SHAPE_CODES) },
      });
      if (f.type === 'string' && f.enum) {
        cases.push({ label: `${f.name} not one of ${f.enum.join('|')}`, method: ep.m, path: fill(ep.p) + baseQuery(ep), token, body: { ...baseBody(ep), [f.name]: 'org.hearth.nope' }, expect: 'any4xx' });
      }
    }
  }

  // Optional fields of the wrong type, aimed at the scratch room: a lenient server may act on the rest of the body.
  if (hasJsonBody(ep)) {
    const scratch = { roomId: fx.scratchRoomId ?? '!missing:localhost', roomIdOrAlias: fx.scratchRoomId ?? '!missing:localhost', eventId: fx.scratchEventId ?? '$missing' };
    for (const f of ep.optional ?? []) {
      const wrong = wrongValue(f);
      cases.push({
        label: `optional ${f.name} of the wrong type (${typeof wrong} for ${f.type})`,
        method: ep.m,
        path: fill(ep.p, scratch) + baseQuery(ep),
        token,
        body: { ...baseBody(ep), [f.name]: wrong },
        expect: { codes: errs(ep, ...SHAPE_CODES, 'M_FORBIDDEN', 'M_NOT_FOUND'), orOk: true },
      });
    }
  }

  // Query parameters.
  for (const q of ep.query ?? []) {
    const path = fill(ep.p);
    if (q.required) {
      cases.push({ label: `required query ${q.name} missing`, method: ep.m, path: path + baseQuery(ep, { [q.name]: '\u0000omit' }), token, body, expect: { status: 400, codes: ['M_MISSING_PARAM', 'M_INVALID_PARAM', ...errs(ep)] } });
    }
    if (q.type === 'integer' || q.type === 'number' || q.type === 'boolean') {
      cases.push({ label: `query ${q.name}=notanumber`, method: ep.m, path: path + baseQuery(ep, { [q.name]: 'notanumber' }), token, body, expect: { status: 400, codes: ['M_INVALID_PARAM'] } });
    }
    if (q.type === 'integer' || q.type === 'number') {
      // A huge timeout would only make the server wait: long-poll parameters get the small odd values.
      const odd = /timeout/.test(q.name) ? ['-1', '1.5'] : ['-1', '99999999999999999999', '1.5'];
      for (const v of odd) {
        cases.push({ label: `query ${q.name}=${v}`, method: ep.m, path: path + baseQuery(ep, { [q.name]: v }), token, body, expect: 'no5xx' });
      }
    }
    if (q.enum) {
      cases.push({ label: `query ${q.name} not one of ${q.enum.join('|')}`, method: ep.m, path: path + baseQuery(ep, { [q.name]: 'sideways' }), token, body, expect: { status: 400, codes: ['M_INVALID_PARAM', ...errs(ep)] } });
    }
  }

  // Path parameters: unknown and malformed ids, and other people's data.
  const names = [...ep.p.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
  const q = baseQuery(ep);
  const withParam = (label: string, name: string, value: string, expect: Expect, tok = token) =>
    cases.push({ label, method: ep.m, path: fill(ep.p, { [name]: value }) + q, token: tok, body: hasJsonBody(ep) ? baseBody(ep) : undefined, expect });
  const userRoomData = /\/user\/\{userId\}\/rooms\/\{roomId\}\//.test(ep.p);
  // Room account data names M_INVALID_PARAM for an invalid room id; tags name nothing.
  const roomIdChecked = /\/account_data\//.test(ep.p);
  if (names.includes('roomId') && token) {
    // Room account data and tags may name any room (the spec does not require membership).
    withParam('unknown room', 'roomId', `!nope:${server.serverName}`, userRoomData ? 'no5xx' : { codes: errs(ep, 'M_NOT_FOUND', 'M_FORBIDDEN') });
    withParam('malformed room id', 'roomId', 'not-a-room-id', !userRoomData ? 'any4xx' : roomIdChecked ? { codes: ['M_INVALID_PARAM', 'M_NOT_FOUND', 'M_FORBIDDEN', 'M_BAD_JSON'] } : 'no5xx');
    if (fx.roomId && !userRoomData && !/\/(join|knock|forget|report)\b/.test(ep.p) && !/\/directory\/list\/|room_keys/.test(ep.p)) {
      withParam("a room carol is not in (carol's token)", 'roomId', fx.roomId, { codes: errs(ep, 'M_FORBIDDEN', 'M_NOT_FOUND') }, fx.carol.accessToken);
    }
  }
  if (names.includes('roomIdOrAlias') && token) {
    withParam('unknown alias', 'roomIdOrAlias', `#nope:${server.serverName}`, { codes: ['M_NOT_FOUND', ...errs(ep)] });
    withParam('unknown room', 'roomIdOrAlias', `!nope:${server.serverName}`, { codes: ['M_NOT_FOUND', 'M_FORBIDDEN', ...errs(ep)] });
    withParam('malformed room id or alias', 'roomIdOrAlias', 'nope', 'any4xx');
  }
  if (names.includes('roomAlias')) {
    if (ep.m !== 'PUT') withParam('unknown alias', 'roomAlias', `#nope:${server.serverName}`, { status: 404, codes: ['M_NOT_FOUND'] });
    withParam('malformed alias', 'roomAlias', 'nope', 'any4xx');
  }
  if (names.includes('userId') && token) {
    if (ownUserOnly(ep)) {
      withParam("another user's data", 'userId', fx.bob.userId, { status: 403, codes: ['M_FORBIDDEN'] });
    } else if (/\/profile\//.test(ep.p)) {
      withParam('unknown user', 'userId', `@nope:${server.serverName}`, { status: 404, codes: ['M_NOT_FOUND'] });
    } else {
      withParam('unknown user', 'userId', `@nope:${server.serverName}`, 'any4xx');
    }
    withParam('malformed user id', 'userId', 'not-a-user-id', ownUserOnly(ep) ? { codes: ['M_FORBIDDEN', 'M_INVALID_PARAM', 'M_NOT_FOUND'] } : 'any4xx');
  }
  if (names.includes('eventId') && token) {
    // A redaction or a receipt may name an event the server has not seen.
    const lenient = /\/(redact|receipt)\//.test(ep.p);
    withParam('unknown event', 'eventId', '$nope', lenient ? 'no5xx' : { codes: errs(ep, 'M_NOT_FOUND', 'M_FORBIDDEN') });
  }
  if (names.includes('deviceId') && token) withParam('unknown device', 'deviceId', 'NOPEDEVICE', { codes: ['M_NOT_FOUND'] });
  if (names.includes('filterId') && token) {
    withParam('unknown filter', 'filterId', '987654', { status: 404, codes: ['M_NOT_FOUND'] });
    withParam('non-numeric filter id', 'filterId', 'not-a-filter', { codes: ['M_NOT_FOUND', 'M_INVALID_PARAM'] });
  }
  if (names.includes('kind') && token) withParam('unknown push rule kind', 'kind', 'sideways', { codes: ['M_INVALID_PARAM', 'M_NOT_FOUND', 'M_UNRECOGNIZED', 'M_BAD_JSON'] });
  if (names.includes('ruleId') && token && ep.m !== 'PUT') withParam('unknown push rule', 'ruleId', 'org.hearth.nope', { status: 404, codes: ['M_NOT_FOUND'] });
  if (names.includes('receiptType') && token) withParam('unknown receipt type', 'receiptType', 'm.nope', { status: 400, codes: ['M_INVALID_PARAM', 'M_BAD_JSON'] });
  if (names.includes('keyName') && token) withParam('invalid profile key', 'keyName', 'Bad Key!', { codes: ['M_INVALID_PARAM', 'M_NOT_FOUND', 'M_BAD_JSON', 'M_FORBIDDEN'] });
  if (names.includes('version') && token) withParam('unknown backup version', 'version', '987654', { codes: ['M_NOT_FOUND', ...errs(ep)] });
  return cases;
}

// ---------------------------------------------------------------- odd values anywhere

/** Requests with values that break naive storage or serialisation: only "never a 5xx" is asserted, and 4xx bodies must be Matrix errors. */
function oddValueCases(): Case[] {
  const t = fx.alice.accessToken;
  const r = enc(fx.roomId ?? '!missing:localhost');
  const me = enc(fx.alice.userId);
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
  const send = (label: string, rawOrBody: { raw?: string; body?: unknown }): Case => ({
    label,
    method: 'PUT',
    path: `/_matrix/client/v3/rooms/${r}/send/m.room.message/odd-${++txn}`,
    token: t,
    body: rawOrBody.body,
    rawBody: rawOrBody.raw,
    headers: { 'content-type': 'application/json' },
    expect: 'no5xx',
  });
  return [
    send('NUL character in message text', { body: { msgtype: 'm.text', body: 'a\u0000b' } }),
    send('NUL character in a content key', { body: { msgtype: 'm.text', body: 'x', 'k\u0000': 1 } }),
    send('lone surrogate in message text', { raw: '{"msgtype":"m.text","body":"\\ud800"}' }),
    send('float in event content', { raw: '{"msgtype":"m.text","body":"x","n":1.5}' }),
    send('integer beyond 2^53 in event content', { raw: '{"msgtype":"m.text","body":"x","n":9007199254740993}' }),
    send('exponent number in event content', { raw: '{"msgtype":"m.text","body":"x","n":1e400}' }),
    send('deeply nested content (30000 arrays)', { raw: `{"msgtype":"m.text","body":"x","d":${deep(30000)}}` }),
    send('duplicate keys in the body', { raw: '{"msgtype":"m.text","body":"x","body":"y"}' }),
    send('__proto__ key in the body', { raw: '{"msgtype":"m.text","body":"x","__proto__":{"polluted":true}}' }),
    { label: 'NUL in a state key', method: 'PUT', path: `/_matrix/client/v3/rooms/${r}/state/org.hearth.test/${enc('a\u0000b')}`, token: t, body: { a: 1 }, expect: 'no5xx' },
    { label: 'NUL in an event type', method: 'PUT', path: `/_matrix/client/v3/rooms/${r}/send/${enc('m.\u0000')}/odd-${++txn}`, token: t, body: { a: 1 }, expect: 'no5xx' },
    { label: 'NUL in a transaction id', method: 'PUT', path: `/_matrix/client/v3/rooms/${r}/send/m.room.message/${enc('t\u0000x')}`, token: t, body: { msgtype: 'm.text', body: 'x' }, expect: 'no5xx' },
    { label: 'NUL in an account data type', method: 'PUT', path: `/_matrix/client/v3/user/${me}/account_data/${enc('a\u0000b')}`, token: t, body: { a: 1 }, expect: 'no5xx' },
    { label: 'NUL in a display name', method: 'PUT', path: `/_matrix/client/v3/profile/${me}/displayname`, token: t, body: { displayname: 'a\u0000b' }, expect: 'no5xx' },
    { label: 'NUL in a room id', method: 'GET', path: `/_matrix/client/v3/rooms/${enc('!a\u0000b:localhost')}/state`, token: t, expect: 'any4xx' },
    { label: 'NUL in a user id', method: 'GET', path: `/_matrix/client/v3/profile/${enc('@a\u0000b:localhost')}`, token: t, expect: 'any4xx' },
    { label: 'NUL in a room alias', method: 'GET', path: `/_matrix/client/v3/directory/room/${enc('#a\u0000b:localhost')}`, token: t, expect: 'any4xx' },
    { label: 'NUL in an access token (query)', method: 'GET', path: '/_matrix/client/v3/account/whoami?access_token=abc%00def', expect: { status: 401, codes: ['M_UNKNOWN_TOKEN'] } },
    { label: 'non-ASCII access token (query)', method: 'GET', path: `/_matrix/client/v3/account/whoami?access_token=${enc('clé-ü-😀')}`, expect: { status: 401, codes: ['M_UNKNOWN_TOKEN'] } },
    { label: 'a 10 kB access token', method: 'GET', path: '/_matrix/client/v3/account/whoami', token: 'x'.repeat(10_000), expect: { status: 401, codes: ['M_UNKNOWN_TOKEN'] } },
    { label: 'non-Bearer Authorization header', method: 'GET', path: '/_matrix/client/v3/account/whoami', headers: { authorization: 'Basic dXNlcjpwYXNz' }, expect: { status: 401, codes: ['M_MISSING_TOKEN', 'M_UNKNOWN_TOKEN'] } },
    { label: 'sync with a garbage since token', method: 'GET', path: '/_matrix/client/v3/sync?timeout=0&since=garbage', token: t, expect: 'no5xx' },
    { label: 'sync with a since token from the future', method: 'GET', path: '/_matrix/client/v3/sync?timeout=0&since=s999999999_999999999', token: t, expect: 'no5xx' },
    { label: 'sync with a filter that is not JSON', method: 'GET', path: `/_matrix/client/v3/sync?timeout=0&filter=${enc('{nope')}`, token: t, expect: { status: 400, codes: ['M_BAD_JSON', 'M_INVALID_PARAM', 'M_NOT_JSON'] } },
    { label: 'sync with an unknown filter id', method: 'GET', path: '/_matrix/client/v3/sync?timeout=0&filter=987654', token: t, expect: 'any4xx' },
    { label: 'sync with a filter of the wrong shape', method: 'GET', path: `/_matrix/client/v3/sync?timeout=0&filter=${enc('{"room":{"timeline":{"limit":"ten"}}}')}`, token: t, expect: { status: 400, codes: ['M_BAD_JSON', 'M_INVALID_PARAM'] } },
    { label: 'sync with an empty since', method: 'GET', path: '/_matrix/client/v3/sync?timeout=0&since=&full_state=true', token: t, expect: 'no5xx' },
    { label: 'messages from a garbage token', method: 'GET', path: `/_matrix/client/v3/rooms/${r}/messages?dir=b&from=garbage`, token: t, expect: 'no5xx' },
    { label: 'messages with a filter that is not JSON', method: 'GET', path: `/_matrix/client/v3/rooms/${r}/messages?dir=b&filter=${enc('{nope')}`, token: t, expect: { status: 400, codes: ['M_BAD_JSON', 'M_INVALID_PARAM', 'M_NOT_JSON'] } },
    { label: 'createRoom with an unknown room version', method: 'POST', path: '/_matrix/client/v3/createRoom', token: t, body: { room_version: 'nope' }, expect: { status: 400, codes: ['M_UNSUPPORTED_ROOM_VERSION'] } },
    { label: 'createRoom with invite of a malformed user id', method: 'POST', path: '/_matrix/client/v3/createRoom', token: t, body: { invite: ['not-a-user'] }, expect: 'any4xx' },
    { label: 'createRoom with initial_state missing type', method: 'POST', path: '/_matrix/client/v3/createRoom', token: t, body: { initial_state: [{ content: {} }] }, expect: 'any4xx' },
    { label: 'createRoom with power_level_content_override of the wrong type', method: 'POST', path: '/_matrix/client/v3/createRoom', token: t, body: { power_level_content_override: { users: { [fx.alice.userId]: 'a lot' } } }, expect: 'any4xx' },
    { label: 'createRoom with an alias of the wrong grammar', method: 'POST', path: '/_matrix/client/v3/createRoom', token: t, body: { room_alias_name: 'a:b' }, expect: 'any4xx' },
    { label: 'power levels with a string level', method: 'PUT', path: `/_matrix/client/v3/rooms/${r}/state/m.room.power_levels/`, token: t, body: { users: { [fx.alice.userId]: 'hundred' } }, expect: 'any4xx' },
    { label: 'a member event for someone else by state API', method: 'PUT', path: `/_matrix/client/v3/rooms/${r}/state/m.room.member/${enc(fx.carol.userId)}`, token: t, body: { membership: 'join' }, expect: { status: 403, codes: ['M_FORBIDDEN'] } },
    { label: 'keys/upload with a device key for another user', method: 'POST', path: '/_matrix/client/v3/keys/upload', token: t, body: { device_keys: { user_id: fx.bob.userId, device_id: fx.alice.deviceId, algorithms: [], keys: {}, signatures: {} } }, expect: 'any4xx' },
    { label: 'keys/claim for an unknown user', method: 'POST', path: '/_matrix/client/v3/keys/claim', token: t, body: { one_time_keys: { '@nope:localhost': { DEV: 'signed_curve25519' } } }, expect: 'no5xx' },
    { label: 'keys/query with a malformed user id', method: 'POST', path: '/_matrix/client/v3/keys/query', token: t, body: { device_keys: { 'not-a-user': [] } }, expect: 'no5xx' },
    { label: 'sendToDevice to a malformed user id', method: 'PUT', path: `/_matrix/client/v3/sendToDevice/m.test/odd-${++txn}`, token: t, body: { messages: { 'not-a-user': { '*': {} } } }, expect: 'no5xx' },
    { label: 'sendToDevice with a message that is not an object', method: 'PUT', path: `/_matrix/client/v3/sendToDevice/m.test/odd-${++txn}`, token: t, body: { messages: { [fx.bob.userId]: { '*': 'hello' } } }, expect: 'any4xx' },
    // Client-server API "Size limits": an event over 65536 bytes, a state_key or type over 255 bytes, is refused.
    { label: 'an event over 65536 bytes (body under max_request_bytes)', method: 'PUT', path: `/_matrix/client/v3/rooms/${r}/send/m.room.message/odd-${++txn}`, token: t, body: { msgtype: 'm.text', body: 'x'.repeat(MAX_REQUEST_BYTES - 200) }, expect: { codes: ['M_TOO_LARGE', 'M_BAD_JSON'] } },
    { label: 'a state_key over 255 bytes', method: 'PUT', path: `/_matrix/client/v3/rooms/${r}/state/org.hearth.test/${'k'.repeat(256)}`, token: t, body: { a: 1 }, expect: { codes: ['M_TOO_LARGE', 'M_BAD_JSON', 'M_INVALID_PARAM'] } },
    { label: 'an event type over 255 bytes', method: 'PUT', path: `/_matrix/client/v3/rooms/${r}/send/${'t'.repeat(256)}/odd-${++txn}`, token: t, body: { a: 1 }, expect: { codes: ['M_TOO_LARGE', 'M_BAD_JSON', 'M_INVALID_PARAM'] } },
    { label: 'a room alias over 255 bytes', method: 'PUT', path: `/_matrix/client/v3/directory/room/${enc(`#${'a'.repeat(260)}:${server.serverName}`)}`, token: t, body: { room_id: fx.roomId ?? '!missing:localhost' }, expect: 'any4xx' },
    // NUL inside JSON bodies that end up in SQL comparisons.
    { label: 'NUL in a user directory search', method: 'POST', path: '/_matrix/client/v3/user_directory/search', token: t, body: { search_term: 'a\u0000b' }, expect: 'no5xx' },
    { label: 'NUL in a public rooms search', method: 'POST', path: '/_matrix/client/v3/publicRooms', token: t, body: { filter: { generic_search_term: 'a\u0000b' } }, expect: 'no5xx' },
    { label: 'NUL in a user id in keys/query', method: 'POST', path: '/_matrix/client/v3/keys/query', token: t, body: { device_keys: { '@a\u0000b:localhost': [] } }, expect: 'no5xx' },
    { label: 'NUL in a login user', method: 'POST', path: '/_matrix/client/v3/login', body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'a\u0000b' }, password: 'x' }, expect: 'any4xx' },
    { label: 'NUL in a registration username', method: 'GET', path: '/_matrix/client/v3/register/available?username=a%00b', expect: 'any4xx' },
    { label: 'NUL in an alias target room id', method: 'PUT', path: `/_matrix/client/v3/directory/room/${enc(`#nul-${process.pid}:${server.serverName}`)}`, token: t, body: { room_id: '!a\u0000b:localhost' }, expect: 'any4xx' },
    { label: 'NUL in an invitee', method: 'POST', path: `/_matrix/client/v3/rooms/${r}/invite`, token: t, body: { user_id: '@a\u0000b:localhost' }, expect: 'any4xx' },
    { label: 'NUL in a sync filter', method: 'GET', path: `/_matrix/client/v3/sync?timeout=0&filter=${enc('{"room":{"rooms":["!a\u0000b:localhost"]}}')}`, token: t, expect: 'no5xx' },
    { label: 'NUL in a messages filter', method: 'GET', path: `/_matrix/client/v3/rooms/${r}/messages?dir=b&filter=${enc('{"types":["a\u0000b"]}')}`, token: t, expect: 'no5xx' },
    { label: 'NUL in a to-device target', method: 'PUT', path: `/_matrix/client/v3/sendToDevice/m.test/odd-${++txn}`, token: t, body: { messages: { [fx.bob.userId]: { 'DEV\u0000': {} } } }, expect: 'no5xx' },
    { label: 'login with an unknown login type', method: 'POST', path: '/_matrix/client/v3/login', body: { type: 'm.login.nope' }, expect: { status: 400, codes: ['M_UNKNOWN', 'M_BAD_JSON', 'M_INVALID_PARAM'] } },
    { label: 'login with a wrong password', method: 'POST', path: '/_matrix/client/v3/login', body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: fx.alice.userId }, password: 'wrong' }, expect: { status: 403, codes: ['M_FORBIDDEN'] } },
    { label: 'login as an unknown user', method: 'POST', path: '/_matrix/client/v3/login', body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'nobody-at-all' }, password: 'x' }, expect: { status: 403, codes: ['M_FORBIDDEN'] } },
    { label: 'login with an identifier of the wrong type', method: 'POST', path: '/_matrix/client/v3/login', body: { type: 'm.login.password', identifier: 'alice', password: 'x' }, expect: { status: 400, codes: ['M_BAD_JSON', 'M_INVALID_PARAM', 'M_UNKNOWN', 'M_MISSING_PARAM'] } },
    { label: 'register with a username of the wrong grammar', method: 'POST', path: '/_matrix/client/v3/register', body: { username: 'Not Valid!', password: 'x', auth: { type: 'm.login.dummy' } }, expect: { codes: ['M_INVALID_USERNAME'] } },
    { label: 'register/available with a bad username', method: 'GET', path: '/_matrix/client/v3/register/available?username=Not%20Valid!', expect: { status: 400, codes: ['M_INVALID_USERNAME'] } },
  ];
}

// ---------------------------------------------------------------- forbidden actions

function forbiddenCases(): { name: string; c: Case; route: string }[] {
  const r = enc(fx.roomId ?? '!missing:localhost');
  const bob = fx.bob.accessToken;
  const carol = fx.carol.accessToken;
  const alice = enc(fx.alice.userId);
  const FORBIDDEN: Expect = { status: 403, codes: ['M_FORBIDDEN'] };
  const mk = (name: string, method: string, route: string, path: string, token: string, body?: unknown, expect: Expect = FORBIDDEN) => ({
    name,
    route,
    c: { label: name, method, path, token, body, expect },
  });
  const out = [
    mk('bob, with power 0, cannot change the room name', 'PUT', '/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}', `/_matrix/client/v3/rooms/${r}/state/m.room.name/`, bob, { name: 'mine now' }),
    mk('bob, with power 0, cannot change the power levels', 'PUT', '/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}', `/_matrix/client/v3/rooms/${r}/state/m.room.power_levels/`, bob, { users: { [fx.bob.userId]: 100 } }),
    mk('bob, with power 0, cannot kick alice', 'POST', '/_matrix/client/v3/rooms/{roomId}/kick', `/_matrix/client/v3/rooms/${r}/kick`, bob, { user_id: fx.alice.userId }),
    mk('bob, with power 0, cannot ban alice', 'POST', '/_matrix/client/v3/rooms/{roomId}/ban', `/_matrix/client/v3/rooms/${r}/ban`, bob, { user_id: fx.alice.userId }),
    mk('bob, with power 0, cannot upgrade the room', 'POST', '/_matrix/client/v3/rooms/{roomId}/upgrade', `/_matrix/client/v3/rooms/${r}/upgrade`, bob, { new_version: '11' }),
    mk("bob cannot set alice's typing state", 'PUT', '/_matrix/client/v3/rooms/{roomId}/typing/{userId}', `/_matrix/client/v3/rooms/${r}/typing/${alice}`, bob, { typing: true, timeout: 1000 }),
    mk("bob cannot read alice's account data", 'GET', '/_matrix/client/v3/user/{userId}/account_data/{type}', `/_matrix/client/v3/user/${alice}/account_data/m.direct`, bob),
    mk("bob cannot write alice's account data", 'PUT', '/_matrix/client/v3/user/{userId}/account_data/{type}', `/_matrix/client/v3/user/${alice}/account_data/org.hearth.x`, bob, { a: 1 }),
    mk("bob cannot write alice's room account data", 'PUT', '/_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}', `/_matrix/client/v3/user/${alice}/rooms/${r}/account_data/org.hearth.x`, bob, { a: 1 }),
    mk("bob cannot read alice's room tags", 'GET', '/_matrix/client/v3/user/{userId}/rooms/{roomId}/tags', `/_matrix/client/v3/user/${alice}/rooms/${r}/tags`, bob),
    mk("bob cannot tag a room for alice", 'PUT', '/_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}', `/_matrix/client/v3/user/${alice}/rooms/${r}/tags/u.work`, bob, {}),
    mk("bob cannot change alice's display name", 'PUT', '/_matrix/client/v3/profile/{userId}/{keyName}', `/_matrix/client/v3/profile/${alice}/displayname`, bob, { displayname: 'Mallory' }),
    mk("bob cannot set alice's presence", 'PUT', '/_matrix/client/v3/presence/{userId}/status', `/_matrix/client/v3/presence/${alice}/status`, bob, { presence: 'online' }),
    mk("bob cannot upload a filter for alice", 'POST', '/_matrix/client/v3/user/{userId}/filter', `/_matrix/client/v3/user/${alice}/filter`, bob, {}),
    mk("bob cannot ask for an OpenID token as alice", 'POST', '/_matrix/client/v3/user/{userId}/openid/request_token', `/_matrix/client/v3/user/${alice}/openid/request_token`, bob, {}),
    mk('carol, not in the room, cannot send to it', 'PUT', '/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}', `/_matrix/client/v3/rooms/${r}/send/m.room.message/carol-1`, carol, { msgtype: 'm.text', body: 'let me in' }),
    mk('carol, not in the room, cannot read its messages', 'GET', '/_matrix/client/v3/rooms/{roomId}/messages', `/_matrix/client/v3/rooms/${r}/messages?dir=b`, carol),
    mk('carol, not in the room, cannot read its state', 'GET', '/_matrix/client/v3/rooms/{roomId}/state', `/_matrix/client/v3/rooms/${r}/state`, carol),
    mk('carol, not in the room, cannot read its members', 'GET', '/_matrix/client/v3/rooms/{roomId}/members', `/_matrix/client/v3/rooms/${r}/members`, carol),
    mk('carol, not in the room, cannot invite to it', 'POST', '/_matrix/client/v3/rooms/{roomId}/invite', `/_matrix/client/v3/rooms/${r}/invite`, carol, { user_id: fx.carol.userId }),
    mk('carol cannot join an invite-only room', 'POST', '/_matrix/client/v3/join/{roomIdOrAlias}', `/_matrix/client/v3/join/${r}`, carol, {}),
    mk('carol cannot set a read marker in a room she is not in', 'POST', '/_matrix/client/v3/rooms/{roomId}/read_markers', `/_matrix/client/v3/rooms/${r}/read_markers`, carol, { 'm.fully_read': fx.eventId ?? '$x' }),
    mk('carol, not in the room, cannot fetch one of its events', 'GET', '/_matrix/client/v3/rooms/{roomId}/event/{eventId}', `/_matrix/client/v3/rooms/${r}/event/${enc(fx.eventId ?? '$x')}`, carol, undefined, { codes: ['M_FORBIDDEN', 'M_NOT_FOUND'] }),
    mk('bob, not an admin, cannot use the whois admin API', 'GET', '/_matrix/client/v3/admin/whois/{userId}', `/_matrix/client/v3/admin/whois/${alice}`, bob),
    mk('bob, not an admin, cannot lock alice', 'PUT', '/_matrix/client/v1/admin/lock/{userId}', `/_matrix/client/v1/admin/lock/${alice}`, bob, { locked: true }),
    mk('bob, not an admin, cannot suspend alice', 'PUT', '/_matrix/client/v1/admin/suspend/{userId}', `/_matrix/client/v1/admin/suspend/${alice}`, bob, { suspended: true }),
  ];
  if (fx.eventId) {
    out.push(mk("bob, with power 0, cannot redact alice's message", 'PUT', '/_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}', `/_matrix/client/v3/rooms/${r}/redact/${enc(fx.eventId)}/bob-redact-1`, bob, {}));
  }
  if (fx.alias) {
    out.push(mk("bob cannot delete alice's alias", 'DELETE', '/_matrix/client/v3/directory/room/{roomAlias}', `/_matrix/client/v3/directory/room/${enc(fx.alias)}`, bob));
  }
  return out;
}

// ---------------------------------------------------------------- tests

const isServed = (method: string, route: string) => served({ op: route, m: method as 'GET', p: route, auth: 'required' });

/** Whether a concrete path (ids filled in) hits a route Hearth serves. */
function servedPath(method: string, path: string): boolean {
  const p = path.split('?')[0];
  return SPEC_ENDPOINTS.some((ep) => ep.m === method && served(ep) && new RegExp(`^${ep.p.replace(/\{\w+\}/g, '[^/]*')}$`).test(p));
}

// The suite grows with every endpoint served: about 40 s alone, more under the full run's load.
describe('bad input to every client-server endpoint Hearth serves', { timeout: 180_000 }, () => {
  after(async () => {
    await server.stop();
  });

  it('the fixtures (a room, a message, an alias) can be made', () => {
    assert.deepEqual(fx.setupProblems, [], 'room-dependent cases use fixtures; fix these first');
  });

  for (const ep of SPEC_ENDPOINTS) {
    const title = `${ep.m} ${ep.p.replace(/^\/_matrix\/client/, '')} answers bad input with 4xx and the spec's errcodes, never 5xx`;
    if (!served(ep)) {
      it(title, { skip: `Hearth does not serve ${ep.op} yet` }, () => {});
      continue;
    }
    it(title, async () => {
      exercised.add(`${ep.m} ${ep.p}`);
      const failures = await runCases(casesFor(ep));
      assert.deepEqual(failures, [], `${ep.op}: ${failures.length} request(s) broke the spec:\n${failures.join('\n')}`);
    });
  }

  for (const f of forbiddenCases()) {
    const ok = isServed(f.c.method, f.route) && fx.roomId !== undefined;
    it(`${f.name} (403 M_FORBIDDEN)`, { skip: ok ? false : `${f.c.method} ${f.route} is not served or there is no room` }, async () => {
      exercised.add(`${f.c.method} ${f.route}`);
      const failures = await runCases([f.c]);
      assert.deepEqual(failures, []);
    });
  }

  it('odd values (NUL, lone surrogates, floats, deep nesting, huge tokens) never make a 5xx', async (t) => {
    const cases = oddValueCases().filter((c) => servedPath(c.method, c.path));
    if (cases.length === 0) return t.skip('none of the endpoints is served yet');
    const failures = await runCases(cases);
    assert.deepEqual(failures, [], `${failures.length} request(s) broke the spec:\n${failures.join('\n')}`);
  });

  it('summary: requests sent, endpoints exercised, server errors', () => {
    const servedEndpoints = SPEC_ENDPOINTS.filter(served);
    const fiveXx = outcomes.filter((o) => o.status >= 500);
    console.log(
      `# bad-input: ${outcomes.length} requests to ${exercised.size} endpoints ` +
        `(${servedEndpoints.length} of ${SPEC_ENDPOINTS.length} spec client-server endpoints served); ${fiveXx.length} answered 5xx`,
    );
    for (const o of fiveXx) console.log(`#   5xx: ${describeOutcome(o, 'server error')}`);
    const lenient = outcomes.filter((o) => o.status < 300 && o.c.label.startsWith('optional '));
    if (lenient.length) {
      console.log(`#   accepted with 2xx although an optional field had the wrong type (spec: M_BAD_JSON): ${lenient.length}`);
      for (const o of lenient) console.log(`#     ${o.c.method} ${o.c.path.replace(/\?.*/, '')} ${JSON.stringify(o.c.body).slice(0, 140)}`);
    }
    // An optional field of the wrong type is still bad JSON (spec: M_BAD_JSON).
    assert.deepEqual(lenient.map((o) => `${o.c.method} ${o.c.path.replace(/\?.*/, '')} ${o.c.label}`), []);
    // What the server answered, per kind of bad input (labels without the field names).
    const byKind = new Map<string, Map<string, number>>();
    for (const o of outcomes) {
      const kind = o.c.label.replace(/^optional \S+ of the wrong type.*/, 'an optional field of the wrong type').replace(/^\S+ of the wrong type.*/, 'a field of the wrong type').replace(/^query \S+=.*/, 'odd query value').replace(/^\S+ not one of.*|^query \S+ not one of.*/, 'value outside an enum');
      const errcode = (o.body as { errcode?: string } | undefined)?.errcode;
      const key = `${o.status}${errcode ? ` ${errcode}` : ''}`;
      const m = byKind.get(kind) ?? new Map<string, number>();
      m.set(key, (m.get(key) ?? 0) + 1);
      byKind.set(kind, m);
    }
    for (const [kind, m] of [...byKind].sort()) {
      console.log(`#   ${kind}: ${[...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n}x ${k}`).join(', ')}`);
    }
    assert.ok(outcomes.length > 0 || servedEndpoints.length === 0);
  });
});
