import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import postgres from 'postgres';
import { Agent } from 'undici';
import YAML from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { createHomeserver, type Homeserver } from '../../src/homeserver.js';
import { createLogger } from '../../src/logger.js';
import { startRoundRobin, type RoundRobin } from './round-robin.js';
import { checkResponse, describeMismatch, takeClientMismatches } from './spec-schemas.js';

/** Which storage backend this test run uses: HEARTH_TEST_DB=sqlite (default) or postgres. */
export const TEST_DB = (process.env.HEARTH_TEST_DB ?? 'sqlite') as 'sqlite' | 'postgres';
/**
 * HEARTH_TEST_NODES=2 (PostgreSQL only): every test server is two nodes on one database behind a
 * round-robin balancer, and `url` is the balancer's; `hs` is the first node.
 */
const TEST_NODES = TEST_DB === 'postgres' ? Math.max(1, Number(process.env.HEARTH_TEST_NODES ?? 1)) : 1;
const PG_ADMIN_URL = process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
}

export interface TestUser {
  userId: string;
  accessToken: string;
  deviceId: string;
  password: string;
}

export interface TestServer {
  url: string;
  serverName: string;
  hs: Homeserver;
  dataDir: string;
  /**
   * Calls the server over real HTTP. `path` starts with `/_matrix/...`. Throws when a JSON answer
   * does not match the spec's schema for the operation and status (spec-schemas.ts).
   */
  request<T = any>(method: string, path: string, opts?: { body?: unknown; token?: string; rawBody?: string; headers?: Record<string, string> }): Promise<ApiResponse<T>>;
  /** Creates a user through the accounts service and logs in over HTTP. */
  registerUser(localpart?: string, opts?: { admin?: boolean; password?: string }): Promise<TestUser>;
  /** Stops and starts the server on the same database and port. */
  restart(): Promise<void>;
  /** Stops the server; fails if a matrix-js-sdk client got an answer that does not match the spec. */
  stop(): Promise<void>;
}

export interface TestServerOptions {
  serverName?: string;
  /** Extra keys merged into the config file. */
  config?: Record<string, unknown>;
}

async function createPgDatabase(): Promise<string> {
  const name = `hearth_t_${randomBytes(6).toString('hex')}`;
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

async function dropPgDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
  } finally {
    await admin.end();
  }
}

/** An empty database on the backend under test (a SQLite file or a PostgreSQL database), for storage-level tests. */
export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  if (TEST_DB === 'postgres') {
    const url = await createPgDatabase();
    return { url, drop: () => dropPgDatabase(url) };
  }
  const dir = mkdtempSync(join(tmpdir(), 'hearth-db-'));
  return { url: join(dir, 'hearth.db'), drop: async () => rmSync(dir, { recursive: true, force: true }) };
}

let userCounter = 0;

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const serverName = opts.serverName ?? 'localhost';
  const dataDir = mkdtempSync(join(tmpdir(), 'hearth-test-'));
  const dbUrl = TEST_DB === 'postgres' ? await createPgDatabase() : 'hearth.db';
  const file = join(dataDir, 'hearth.yaml');
  const cfg = {
    server_name: serverName,
    public_baseurl: 'http://127.0.0.1/',
    listen: '127.0.0.1:0',
    data_dir: dataDir,
    database: { url: dbUrl, sqlite_synchronous: 'NORMAL', pool_size: 5 },
    registration: 'open',
    registration_shared_secret: 'test-shared-secret',
    form_secret: 'test-form-secret',
    rate_limits: { enabled: false },
    log_level: process.env.HEARTH_TEST_LOG ?? 'silent',
    ...opts.config,
  };
  writeFileSync(file, YAML.stringify(cfg));
  const env = {};
  let loaded = loadConfig({ file, env });
  let hs = await createHomeserver(loaded, { logger: createLogger(loaded.config.log_level) });
  let url = await hs.start();
  // The other nodes of a HEARTH_TEST_NODES cluster: the same config, each on a port of its own.
  const startOthers = async () => {
    const others: { hs: Homeserver; url: string }[] = [];
    for (let i = 1; i < TEST_NODES; i++) {
      const node = await createHomeserver({ ...loaded, config: { ...loaded.config, listen: '127.0.0.1:0' } }, { logger: createLogger(loaded.config.log_level) });
      others.push({ hs: node, url: await node.start() });
    }
    return others;
  };
  let others = await startOthers();
  const balancer: RoundRobin | null = TEST_NODES > 1 ? await startRoundRobin(() => [url, ...others.map((o) => o.url)]) : null;
  // A fresh connection pool per server start: a socket kept alive to a stopped server must not be reused.
  // Servers started with `tls` serve a self-signed certificate.
  let agent = new Agent({ keepAliveTimeout: 10_000, connect: { rejectUnauthorized: false } });
  const port = new URL(url).port;

  const server: TestServer = {
    url: balancer?.url ?? url,
    serverName,
    hs,
    dataDir,
    async request(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      let body: string | undefined;
      if (o.rawBody !== undefined) body = o.rawBody;
      else if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(server.url + path, { method, headers, body, dispatcher: agent } as unknown as RequestInit);
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text.length ? JSON.parse(text) : undefined;
      } catch {
        /* not JSON: keep the text */
      }
      const json = res.headers.get('content-type')?.includes('application/json') ?? false;
      const mismatch = json ? checkResponse(method, path, res.status, parsed) : undefined;
      if (mismatch) throw new Error(describeMismatch(mismatch, method, path, parsed));
      return { status: res.status, body: parsed as any };
    },
    async registerUser(localpart, o = {}) {
      const name = localpart ?? `user${process.pid}_${++userCounter}`;
      const password = o.password ?? `pw-${name}-secret`;
      const { userId } = await server.hs.ctx.services.accounts.createUser({ localpart: name, password, admin: o.admin });
      const res = await server.request('POST', '/_matrix/client/v3/login', {
        body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password },
      });
      if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
      return { userId, accessToken: res.body.access_token, deviceId: res.body.device_id, password };
    },
    async restart() {
      for (const o of others) await o.hs.stop();
      await hs.stop();
      await agent.close();
      agent = new Agent({ keepAliveTimeout: 10_000, connect: { rejectUnauthorized: false } });
      const c = YAML.parse(readFileSync(file, 'utf8'));
      c.listen = `127.0.0.1:${port}`;
      writeFileSync(file, YAML.stringify(c));
      loaded = loadConfig({ file, env });
      hs = await createHomeserver(loaded, { logger: createLogger(loaded.config.log_level) });
      url = await hs.start();
      others = await startOthers();
      server.hs = hs;
      server.url = balancer?.url ?? url;
    },
    async stop() {
      await balancer?.close();
      for (const o of others) await o.hs.stop();
      await hs.stop();
      await agent.close();
      if (TEST_DB === 'postgres') await dropPgDatabase(dbUrl);
      rmSync(dataDir, { recursive: true, force: true });
      const found = takeClientMismatches(new URL(server.url).origin);
      if (found.length) throw new Error(`${found.length} answers to matrix-js-sdk clients do not match the spec:\n${found.slice(0, 10).join('\n')}`);
    },
  };
  return server;
}

/**
 * A free TCP port on the loopback address, for a server a test starts itself on a port it must
 * know beforehand. Chosen at random below the kernel's ephemeral range (32768 and up): a port the
 * kernel handed out for listen(0) would be free again once closed, and any outgoing connection of a
 * parallel test file (to PostgreSQL, to another server) could take it as its source port before
 * the server listens on it. Below that range only another freePort caller can collide, and the
 * bind check and the per-process set make that unlikely.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (!free) continue;
    handedOut.add(port);
    return port;
  }
}
const handedOut = new Set<number>();

/**
 * A loopback port nothing listens on, for a server that is down: connections to it are refused. A
 * port freePort found free would stay so only until a server of a parallel test file takes it (the
 * down server then answers); nothing in the suite, nor a stock Linux machine, binds port 1 (tcpmux).
 */
export const REFUSED_PORT = 1;
