// Two (or more) Hearth servers on loopback that find each other through `federation.resolve`,
// and small stand-ins for other servers: a key server with its own name and key.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateSigningKey, publicKeyBase64, signJson, type SigningKey } from '../../src/core/signing.js';
import { signRequest } from '../../src/federation/x-matrix.js';
import { freePort, REFUSED_PORT, startTestServer, type ApiResponse, type TestServer } from '../helpers/server.js';

export { freePort };

/** Where a server that is down is resolved to: connections there are refused (see REFUSED_PORT). */
export const REFUSED_URL = `http://127.0.0.1:${REFUSED_PORT}`;

/** A plain HTTP server on 127.0.0.1 answering with `handle`; counts requests by path and keeps the Host headers. */
export async function httpServer(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; port: number; hits: Map<string, number>; hosts: string[]; close(): Promise<void> }> {
  const hits = new Map<string, number>();
  const hosts: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    hosts.push(req.headers.host ?? '');
    handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hits,
    hosts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A server's signed key response. */
export function keyResponse(serverName: string, key: SigningKey, validForMs = 24 * 3600_000): Record<string, unknown> {
  return signJson({ server_name: serverName, verify_keys: { [key.keyId]: { key: publicKeyBase64(key) } }, old_verify_keys: {}, valid_until_ts: Date.now() + validForMs }, serverName, key) as unknown as Record<string, unknown>;
}

/** A server that only publishes its keys: enough to sign requests as `serverName`. */
export async function keyServer(serverName: string, opts: { answerAs?: string } = {}) {
  const key = generateSigningKey();
  const http = await httpServer((req, res) => {
    if (req.url === '/_matrix/key/v2/server') return json(res, 200, keyResponse(opts.answerAs ?? serverName, key));
    json(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'no' });
  });
  return { serverName, key, ...http };
}

export interface Pair {
  a: TestServer;
  b: TestServer;
  stop(): Promise<void>;
}

/** Hearth servers `a.test` and `b.test`, each resolving the other (and `extraResolve`) by the config map. */
export async function startPair(extraResolve: Record<string, string> = {}, extraConfig: { a?: Record<string, unknown>; b?: Record<string, unknown> } = {}): Promise<Pair> {
  const [pa, pb] = [await freePort(), await freePort()];
  const resolve = { 'a.test': `http://127.0.0.1:${pa}`, 'b.test': `http://127.0.0.1:${pb}`, ...extraResolve };
  const cfg = (port: number, extra: Record<string, unknown> = {}) => {
    const { federation, ...rest } = extra as { federation?: { resolve?: Record<string, string> } & Record<string, unknown> };
    return { listen: `127.0.0.1:${port}`, federation: { ...federation, resolve: { ...resolve, ...federation?.resolve } }, ...rest };
  };
  const [a, b] = await Promise.all([
    startTestServer({ serverName: 'a.test', config: cfg(pa, extraConfig.a) }),
    startTestServer({ serverName: 'b.test', config: cfg(pb, extraConfig.b) }),
  ]);
  return { a, b, stop: async () => void (await Promise.all([a.stop(), b.stop()])) };
}

/** A federation request to `to`, signed as `origin` with `key` (or with the header given). */
export async function signedRequest(
  to: TestServer,
  method: string,
  path: string,
  opts: { origin: string; key: SigningKey; destination?: string; body?: unknown; authorization?: string | null },
): Promise<ApiResponse> {
  const headers: Record<string, string> = {};
  const auth = opts.authorization !== undefined
    ? opts.authorization
    : signRequest({ method, uri: path, origin: opts.origin, destination: opts.destination ?? to.serverName, content: opts.body }, opts.key);
  if (auth !== null) headers.authorization = auth;
  return to.request(method, path, { body: opts.body, headers });
}

export const F = '/_matrix/federation/v1';

/** Hearth servers with the given names, each resolving every other by the config map. */
export async function startServers(names: string[], extraConfig: Record<string, unknown> = {}): Promise<{ servers: TestServer[]; stop(): Promise<void> }> {
  const ports: number[] = [];
  for (let i = 0; i < names.length; i++) ports.push(await freePort());
  const resolve = Object.fromEntries(names.map((n, i) => [n, `http://127.0.0.1:${ports[i]}`]));
  const servers = await Promise.all(
    names.map((serverName, i) => startTestServer({ serverName, config: { listen: `127.0.0.1:${ports[i]}`, federation: { resolve }, ...extraConfig } })),
  );
  return { servers, stop: async () => void (await Promise.all(servers.map((s) => s.stop()))) };
}

/** Where a joining server's state resync starts (/state_ids) and may continue (/state). */
export const RESYNC_PREFIX = '/_matrix/federation/v1/state';

/**
 * A pair for partial-state joins: b.test reaches a.test through a proxy that can hold the resync
 * (requests starting with RESYNC_PREFIX); `stop` releases it and stops everything.
 */
export async function startPartialStatePair(): Promise<Pair & { proxy: Awaited<ReturnType<typeof holdingProxy>> }> {
  const proxy = await holdingProxy(RESYNC_PREFIX);
  const pair = await startPair({}, { b: { federation: { resolve: { 'a.test': proxy.url } } } });
  proxy.target(Number(new URL(pair.a.url).port));
  return {
    a: pair.a,
    b: pair.b,
    proxy,
    async stop() {
      proxy.release();
      await pair.stop();
      await proxy.close();
    },
  };
}

/** Polls `check` until it returns something other than undefined/false. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Forwards every request to the target port; while holding, those whose path starts with `heldPrefix` wait for `release`. */
export async function holdingProxy(heldPrefix: string) {
  let targetPort = 0;
  let holding = false;
  const paths: string[] = [];
  const held: (() => void)[] = [];
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const up = httpRequest({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('error', () => up.destroy());
    req.pipe(up);
  };
  const server = createServer((req, res) => {
    if (req.url?.startsWith(heldPrefix)) {
      paths.push(req.url);
      if (holding) {
        held.push(() => forward(req, res));
        return;
      }
    }
    forward(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    target(port: number) {
      targetPort = port;
    },
    /** Requests seen whose path starts with the held prefix (held or not), or with `prefix` when given. */
    heldRequests: (prefix = heldPrefix) => paths.filter((p) => p.startsWith(prefix)).length,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const go of held.splice(0)) go();
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
