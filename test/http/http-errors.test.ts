/**
 * Answers produced by the HTTP layer itself, below any route: every one is a Matrix error
 * `{errcode, error}` sent as `application/json` (DESIGN section 6; spec "Standard error
 * response"). Requests Node's HTTP parser refuses are sent over raw sockets, the way a broken
 * client or a scanner sends them.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const V3 = '/_matrix/client/v3';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: any;
}

/** Sends `request` as is and reads the first answer (the server may close the socket after it). */
function raw(url: string, request: string | Buffer, opts: { endAfterWrite?: boolean } = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const len = Number(headers['content-length'] ?? NaN);
      const rest = text.slice(end + 4);
      if (!Number.isNaN(len) && Buffer.byteLength(rest) < len) return;
      const bodyText = Number.isNaN(len) ? rest : Buffer.from(rest).subarray(0, len).toString('utf8');
      done = true;
      socket.destroy();
      let body: unknown = bodyText;
      try {
        body = JSON.parse(bodyText);
      } catch {
        /* keep the text */
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    };
    socket.on('data', (c) => {
      chunks.push(c);
      finish();
    });
    socket.on('end', finish);
    socket.on('close', () => {
      finish();
      if (!done) reject(new Error(`connection closed without an answer: ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`));
    });
    socket.on('error', (e) => {
      if (!done && chunks.length === 0) reject(e);
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')));
    socket.write(request, () => {
      if (opts.endAfterWrite) socket.end();
    });
  });
}

function assertMatrixError(res: { status: number; body: any }, status: number, errcode: string | RegExp): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(typeof res.body, 'object', `a JSON body: ${String(res.body)}`);
  if (typeof errcode === 'string') assert.equal(res.body.errcode, errcode, JSON.stringify(res.body));
  else assert.match(res.body.errcode, errcode);
  assert.equal(typeof res.body.error, 'string');
}

describe('HTTP-layer errors are Matrix errors', () => {
  let server: TestServer;
  let alice: TestUser;
  before(async () => {
    server = await startTestServer({ config: { max_request_bytes: 64 * 1024 } });
    alice = await server.registerUser();
  });
  after(async () => {
    await server.stop();
  });

  it('JSON answers are sent as exactly application/json', async () => {
    for (const path of ['/_matrix/client/versions', `${V3}/no/such/endpoint`, `${V3}/capabilities`]) {
      const res = await fetch(server.url + path);
      await res.arrayBuffer();
      assert.equal(res.headers.get('content-type'), 'application/json', path);
    }
    const bad = await fetch(`${server.url}${V3}/login`, { method: 'POST', body: '{', headers: { 'content-type': 'application/json' } });
    await bad.arrayBuffer();
    assert.equal(bad.headers.get('content-type'), 'application/json');
  });

  it('a URL longer than the header limit answers 431 or 414 M_TOO_LARGE', async () => {
    const res = await raw(server.url, `GET ${V3}/profile/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.ok(res.status === 431 || res.status === 414, String(res.status));
    assertMatrixError(res, res.status, 'M_TOO_LARGE');
    assert.equal(res.headers['content-type'], 'application/json');
  });

  it('headers larger than the limit answer 431 M_TOO_LARGE', async () => {
    const res = await raw(server.url, `GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    assertMatrixError(res, 431, 'M_TOO_LARGE');
  });

  it('a path parameter over the router length limit answers 414 M_TOO_LARGE', async () => {
    const res = await server.request('GET', `${V3}/rooms/!${'r'.repeat(2000)}:localhost/state`, { token: alice.accessToken });
    assertMatrixError(res, 414, 'M_TOO_LARGE');
  });

  it('malformed percent-encoding in a path answers 400 with a Matrix error', async () => {
    const res = await server.request('GET', `${V3}/rooms/%E0%A4%A/state`, { token: alice.accessToken });
    assertMatrixError(res, 400, /^M_/);
  });

  it('an unknown method answers M_UNRECOGNIZED', async () => {
    const res = await raw(server.url, `BREW /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n`);
    assertMatrixError(res, res.status, 'M_UNRECOGNIZED');
    assert.ok(res.status === 400 || res.status === 405 || res.status === 501, String(res.status));
    // A method Node knows but no route has.
    const patch = await raw(server.url, `PATCH /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    assertMatrixError(patch, 405, 'M_UNRECOGNIZED');
    const search = await raw(server.url, `SEARCH ${V3}/no/such HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    assertMatrixError(search, 404, 'M_UNRECOGNIZED');
  });

  it('an unknown endpoint answers 404 M_UNRECOGNIZED whatever its body holds', async () => {
    for (const rawBody of ['not json at all', '{"valid": "json"}', '']) {
      const res = await server.request('POST', '/_matrix/client/v1/media/upload', { token: alice.accessToken, rawBody, headers: { 'content-type': 'text/plain' } });
      assertMatrixError(res, 404, 'M_UNRECOGNIZED');
    }
  });

  it('a Content-Length larger than the body sent answers 400 with a Matrix error', async () => {
    const body = '{"type":"m.login.password"}';
    const res = await raw(
      server.url,
      `POST ${V3}/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 50}\r\n\r\n${body}`,
      { endAfterWrite: true },
    );
    assertMatrixError(res, 400, /^M_/);
  });

  it('a Content-Length that is not a number answers 400 with a Matrix error', async () => {
    const res = await raw(server.url, `POST ${V3}/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ten\r\n\r\n{}`);
    assertMatrixError(res, 400, /^M_/);
  });

  it('Content-Length together with chunked encoding answers 400 with a Matrix error', async () => {
    const res = await raw(
      server.url,
      `POST ${V3}/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
    );
    assertMatrixError(res, 400, /^M_/);
  });

  it('a body of a content type that is not JSON, or a malformed content type, answers 400 M_NOT_JSON', async () => {
    const cases: [string, string][] = [
      ['application/xml', '<login/>'],
      ['multipart/form-data; boundary=b', '--b\r\nContent-Disposition: form-data; name="type"\r\n\r\nm.login.password\r\n--b--\r\n'],
      ['application/x-www-form-urlencoded', 'type=m.login.password'],
      [';;;', '{}'],
    ];
    for (const [type, rawBody] of cases) {
      const res = await fetch(`${server.url}${V3}/login`, { method: 'POST', headers: { 'content-type': type }, body: rawBody });
      const body = (await res.json()) as { errcode: string; error: string };
      assert.equal(res.status, 400, type);
      assert.equal(body.errcode, 'M_NOT_JSON', type);
      assert.equal(typeof body.error, 'string');
      assert.equal(res.headers.get('content-type'), 'application/json', type);
    }
    // A JSON body under a JSON type with parameters is read as JSON.
    const ok = await fetch(`${server.url}${V3}/login`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"type":"m.login.password"}' });
    assert.equal(((await ok.json()) as { errcode: string }).errcode, 'M_MISSING_PARAM');
  });

  it('errors raised before any route (router limits, bad URLs, wrong methods) are labelled application/json', async () => {
    const paths: [string, string][] = [
      ['GET', `${V3}/rooms/!${'r'.repeat(2000)}:localhost/state`],
      ['GET', `${V3}/rooms/%E0%A4%A/state`],
      ['PATCH', '/_matrix/client/versions'],
      ['GET', `${V3}/no/such/endpoint`],
    ];
    for (const [method, path] of paths) {
      const res = await fetch(server.url + path, { method, headers: { authorization: `Bearer ${alice.accessToken}` } });
      const body = (await res.json()) as { errcode: string; error: string };
      assert.ok(res.status >= 400, `${method} ${path}`);
      assert.match(body.errcode, /^M_/, `${method} ${path}`);
      assert.equal(typeof body.error, 'string');
      assert.equal(res.headers.get('content-type'), 'application/json', `${method} ${path}`);
    }
  });

  it('a body larger than the limit over a raw socket answers 413 M_TOO_LARGE', async () => {
    const body = `{"pad":"${'x'.repeat(70 * 1024)}"}`;
    const res = await raw(server.url, `POST ${V3}/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assertMatrixError(res, 413, 'M_TOO_LARGE');
  });
});

describe('bodies nested 10,000 levels deep answer 400, not 500', () => {
  let server: TestServer;
  let alice: TestUser;
  let roomId: string;
  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    const created = await server.request('POST', `${V3}/createRoom`, { token: alice.accessToken, body: {} });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    roomId = created.body.room_id;
  });
  after(async () => {
    await server.stop();
  });

  const deepObject = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  const deepArray = (depth: number) => '{"a":' + '['.repeat(depth) + ']'.repeat(depth) + '}';
  const enc = encodeURIComponent;

  const endpoints = (): [string, string][] => [
    ['PUT', `${V3}/user/${enc(alice.userId)}/account_data/org.example.deep`],
    ['PUT', `${V3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/account_data/org.example.deep`],
    ['POST', `${V3}/user/${enc(alice.userId)}/filter`],
    ['POST', `${V3}/delete_devices`],
    ['POST', `${V3}/account/deactivate`],
    ['PUT', `${V3}/user/${enc(alice.userId)}/rooms/${enc(roomId)}/tags/u.deep`],
    ['PUT', `${V3}/rooms/${enc(roomId)}/send/m.room.message/deep1`],
    ['POST', `${V3}/keys/upload`],
  ];

  for (const [name, make] of [['objects', deepObject], ['arrays', deepArray]] as const) {
    it(`nested ${name} answer 400 M_BAD_JSON at every endpoint`, async () => {
      for (const [method, path] of endpoints()) {
        const res = await server.request(method, path, {
          token: alice.accessToken,
          rawBody: make(10_000),
          headers: { 'content-type': 'application/json' },
        });
        assert.equal(res.status, 400, `${method} ${path}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.errcode, 'M_BAD_JSON', `${method} ${path}`);
      }
    });
  }

  it('brackets inside strings do not count as nesting, and modest nesting is accepted', async () => {
    const path = `${V3}/user/${enc(alice.userId)}/account_data/org.example.nested`;
    const content = {
      text: '['.repeat(5000) + '{'.repeat(5000),
      // Escaped quotes inside a string do not end it.
      quoted: '"['.repeat(3000) + '\\'.repeat(3) + '"{'.repeat(3000),
      deep: JSON.parse(deepObject(50)),
    };
    const put = await server.request('PUT', path, { token: alice.accessToken, body: content });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const got = await server.request('GET', path, { token: alice.accessToken });
    assert.deepEqual(got.body, content);
  });
});
