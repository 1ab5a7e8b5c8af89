/**
 * The endpoint inventory: every operation of every OpenAPI file of the client-server API
 * (`data/api/client-server/*.yaml` of the spec) is called over HTTP, under its own base path
 * (`/_matrix/client/v3`, `/_matrix/client/v1`, `/_matrix/media/v3`, `/.well-known`), with its path
 * parameters filled with plausible values and a logged-in user's token. An operation Hearth does
 * not serve answers 404 M_UNRECOGNIZED or 405 (client-server-api "Unsupported endpoints"): any
 * such answer fails, as does a 5xx or an error body that is not a Matrix error.
 *
 * The spec is read at run time from HEARTH_MATRIX_SPEC, or `../shared/matrix-spec` next to the
 * repository.
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fillPath, pathValues } from '../helpers/endpoint-urls.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { basePaths, clientServerFiles, CS_DIR, loadSpecFile, specPresent } from '../helpers/spec-schemas.js';
const METHODS = ['get', 'put', 'post', 'delete'] as const;

interface Operation {
  file: string;
  op: string;
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** The full path with `{param}`s, base path included. */
  path: string;
  /** Required query parameters. */
  query: string[];
}

/**
 * Operations the spec itself tells a server to answer with 404 M_UNRECOGNIZED when it does not
 * offer the feature, with the reason Hearth does not.
 */
const UNRECOGNIZED_BY_SPEC: Record<string, string> = {
  // client-server-api "Authentication API discovery": 404 M_UNRECOGNIZED when the OAuth 2.0 API
  // is not supported. Hearth offers the legacy API (GET /login) only.
  getAuthMetadata: 'the OAuth 2.0 API is not offered',
};

function specOperations(): Operation[] {
  const ops: Operation[] = [];
  for (const path of clientServerFiles()) {
    const file = basename(path);
    const doc = loadSpecFile(path);
    const bases = basePaths(doc);
    for (const [rawPath, item] of Object.entries<Record<string, any>>(doc.paths ?? {})) {
      // The spec writes "/rooms/{roomId}/invite " (a trailing space) to list a second operation on one path.
      const path = rawPath.trim();
      for (const m of METHODS) {
        const operation = item[m];
        if (!operation) continue;
        const params = [...(item.parameters ?? []), ...(operation.parameters ?? [])];
        const query = params.filter((p: any) => p.in === 'query' && p.required).map((p: any) => p.name as string);
        for (const base of bases) {
          ops.push({ file, op: operation.operationId, method: m.toUpperCase() as Operation['method'], path: base + path, query });
        }
      }
    }
  }
  return ops;
}

describe('every client-server endpoint of the spec is served', { skip: specPresent ? false : `no spec at ${CS_DIR} (set HEARTH_MATRIX_SPEC)`, timeout: 180_000 }, () => {
  let server: TestServer;
  let alice: TestUser;
  /** Logged out or deactivated along the way, so alice's token stays valid. */
  let victim: TestUser;
  const values: Record<string, string> = {};

  before(async () => {
    server = await startTestServer();
    alice = await server.registerUser();
    victim = await server.registerUser();
    const created = await server.request('POST', '/_matrix/client/v3/createRoom', {
      token: alice.accessToken,
      body: { room_alias_name: `inventory${process.pid}` },
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const roomId: string = created.body.room_id;
    const sent = await server.request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/inv1`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'hello' },
    });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const upload = await server.request('POST', '/_matrix/media/v3/upload?filename=a.txt', {
      token: alice.accessToken,
      rawBody: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(upload.status, 200, JSON.stringify(upload.body));
    const mxc = new URL(upload.body.content_uri);
    const filter = await server.request('POST', `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/filter`, { token: alice.accessToken, body: {} });
    assert.equal(filter.status, 200, JSON.stringify(filter.body));
    Object.assign(
      values,
      pathValues({
        userId: alice.userId,
        roomId,
        eventId: sent.body.event_id,
        deviceId: alice.deviceId,
        roomAlias: `#inventory${process.pid}:${server.serverName}`,
        serverName: mxc.host,
        mediaId: mxc.pathname.slice(1),
        filterId: filter.body.filter_id,
      }),
    );
  });

  after(async () => {
    await server?.stop();
  });

  /** A concrete URL for `op`: parameters filled, required query parameters given, long polls made short. */
  function urlFor(op: Operation): string {
    const path = fillPath(op.path, values);
    const q = new URLSearchParams();
    for (const name of op.query) q.set(name, queryValue(name));
    // Long polls answer at once.
    if (/\/(sync|events)$/.test(op.path) && op.method === 'GET') q.set('timeout', '0');
    const qs = q.toString();
    return qs ? `${path}?${qs}` : path;
  }

  function queryValue(name: string): string {
    switch (name) {
      case 'redirectUrl':
        return 'http://127.0.0.1/done';
      case 'url':
        return 'http://127.0.0.1/';
      case 'width':
      case 'height':
        return '32';
      case 'ts':
        return String(Date.now());
      case 'dir':
        return 'b';
      case 'userid':
        return alice.userId;
      case 'user_id':
        return victim.userId;
      case 'alias':
        return values.roomAlias;
      default:
        return '1';
    }
  }

  /** Why an answer shows the operation is not served (or broken), or undefined. */
  function problem(status: number, body: any): string | undefined {
    if (status === 405) return 'method not allowed';
    if (status >= 500) return `server error ${status}`;
    if (status >= 400) {
      // A user-interactive auth challenge (401 with `flows`) is the endpoint answering.
      const uia = status === 401 && Array.isArray(body?.flows);
      if (!uia && (!body || typeof body !== 'object' || typeof body.errcode !== 'string')) return 'error body is not a Matrix error';
      if (body.errcode === 'M_UNRECOGNIZED') return 'M_UNRECOGNIZED';
    }
    return undefined;
  }

  it('the spec lists the whole client-server API', () => {
    const ops = specOperations();
    // v1.19 has about 170 operations; far fewer means the files were not read.
    assert.ok(ops.length > 150, `only ${ops.length} operations read from ${CS_DIR}`);
    for (const base of ['/_matrix/client/v3/', '/_matrix/client/v1/', '/_matrix/media/v3/', '/.well-known/matrix/']) {
      assert.ok(ops.some((o) => o.path.startsWith(base)), `no operation under ${base}`);
    }
  });

  it('every operation answers something other than M_UNRECOGNIZED or 405', async () => {
    const ops = specOperations();
    // What ends a session goes last, and as another user: alice's token must stay valid throughout.
    const ending = (o: Operation) => /\/(logout|logout\/all|account\/deactivate)$/.test(o.path);
    const failures: string[] = [];
    for (const op of [...ops.filter((o) => !ending(o)), ...ops.filter(ending)]) {
      const url = urlFor(op);
      const token = ending(op) ? victim.accessToken : alice.accessToken;
      const withBody = op.method === 'POST' || op.method === 'PUT';
      const res = await server.request(op.method, url, { token, ...(withBody ? { body: {} } : {}) });
      const expected = UNRECOGNIZED_BY_SPEC[op.op];
      if (expected !== undefined) {
        if (res.status !== 404 || res.body?.errcode !== 'M_UNRECOGNIZED') {
          failures.push(`${op.method} ${url} (${op.op}): expected the spec's 404 M_UNRECOGNIZED since ${expected}, got ${res.status} ${JSON.stringify(res.body)?.slice(0, 160)}`);
        }
        continue;
      }
      const why = problem(res.status, res.body);
      if (why) failures.push(`${op.method} ${url} (${op.op}, ${op.file}): ${why}: ${res.status} ${JSON.stringify(res.body)?.slice(0, 160)}`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${ops.length} operations are not served:\n${failures.join('\n')}`);
  });
});
