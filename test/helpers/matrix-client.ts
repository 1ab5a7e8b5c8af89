/**
 * Drives Hearth with matrix-js-sdk the way Element does, from Node 20 under
 * `node --test`. The SDK is loaded lazily (`await sdk()`) so that the Node 20
 * shims below are in place before any of its modules run.
 *
 * Set HEARTH_TEST_SDK_LOG=debug (or info, warn, ...) to see the SDK's own logs;
 * by default they are silenced, Rust crypto tracing included.
 */
import type * as Sdk from 'matrix-js-sdk';
import type { MatrixClient } from 'matrix-js-sdk';
import type { TestServer } from './server.js';
import { checkResponse, describeMismatch, recordClientMismatch } from './spec-schemas.js';

type SdkModule = typeof Sdk;

const SDK_LOG_LEVEL = (process.env.HEARTH_TEST_SDK_LOG ?? 'silent') as 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

/**
 * Node 20 lacks Promise.withResolvers (Node 22 has it). matrix-js-sdk 37.5 and its
 * dependencies do not call it, newer releases may: polyfilled so an SDK upgrade does
 * not break these tests in an obscure place.
 */
function installNode20Shims(): void {
  const P = Promise as unknown as { withResolvers?: unknown };
  if (typeof P.withResolvers !== 'function') {
    Object.defineProperty(Promise, 'withResolvers', {
      configurable: true,
      writable: true,
      value: function withResolvers<T>() {
        let resolve!: (v: T | PromiseLike<T>) => void;
        let reject!: (e?: unknown) => void;
        const promise = new Promise<T>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        return { promise, resolve, reject };
      },
    });
  }
  unrefSdkTimers();
  if (typeof globalThis.fetch !== 'function') throw new Error('matrix-js-sdk needs a global fetch (Node >= 18)');
  if (typeof globalThis.crypto?.subtle !== 'object') throw new Error('matrix-js-sdk needs globalThis.crypto (Node >= 19)');
}

/**
 * matrix-js-sdk 37.x leaves ref'd timers behind after stopClient(), and each keeps a
 * process that has stopped every client alive until it fires:
 *  - http-api/utils.js `timeoutSignal` arms one per request (sync: poll timeout + 80 s)
 *    and never clears it;
 *  - serverCapabilities.js re-arms its 6 h refresh (or its retry) when a poll that was
 *    in flight at stop() settles;
 *  - rust-crypto.js arms 5 min per encrypted timeline event, cleared only if that
 *    event is decrypted later.
 * Timers armed from the SDK's or the crypto wasm's code are unref'd here (found by the
 * caller's stack frame): they still fire while the server keeps the process alive,
 * and no longer hold `node --test` open after the tests.
 */
function unrefSdkTimers(): void {
  const g = globalThis as unknown as Record<'setTimeout' | 'setInterval', ((...a: unknown[]) => NodeJS.Timeout) & { __hearthUnref?: boolean }>;
  for (const name of ['setTimeout', 'setInterval'] as const) {
    const real = g[name];
    if (real.__hearthUnref) continue;
    const wrapped = function (this: unknown, ...args: unknown[]) {
      const t = real.apply(this, args);
      const site: { stack?: string } = {};
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 2;
      Error.captureStackTrace(site, wrapped);
      Error.stackTraceLimit = limit;
      if (site.stack && /node_modules[\\/](matrix-js-sdk|@matrix-org)[\\/]/.test(site.stack)) t.unref?.();
      return t;
    };
    Object.defineProperties(wrapped, Object.getOwnPropertyDescriptors(real));
    (wrapped as unknown as { __hearthUnref: boolean }).__hearthUnref = true;
    g[name] = wrapped as typeof real;
  }
}

interface LoglevelLogger {
  setLevel(level: string | number, persist?: boolean): void;
  __hearthQuiet?: boolean;
}
interface LoglevelRoot extends LoglevelLogger {
  getLogger(name: string): LoglevelLogger;
  getLoggers(): Record<string, LoglevelLogger>;
}

/**
 * The SDK logs through loglevel and pins every one of its loggers to DEBUG when it
 * creates it (also later, for per-request child loggers), so a level set once is
 * not enough: each `matrix*` logger's setLevel is made to keep our level.
 */
async function quietSdkLogger(): Promise<void> {
  if (SDK_LOG_LEVEL === 'debug' || SDK_LOG_LEVEL === 'trace') return;
  const mod = (await import('loglevel' as string)) as { default: LoglevelRoot };
  const root = mod.default;
  const pin = (l: LoglevelLogger) => {
    if (l.__hearthQuiet) return;
    const set = l.setLevel.bind(l);
    l.setLevel = () => set(SDK_LOG_LEVEL, false);
    l.__hearthQuiet = true;
    set(SDK_LOG_LEVEL, false);
  };
  for (const l of Object.values(root.getLoggers())) pin(l);
  const getLogger = root.getLogger.bind(root);
  root.getLogger = (name: string) => {
    const l = getLogger(name);
    if (name.startsWith('matrix')) pin(l);
    return l;
  };
}

/**
 * initRustCrypto turns Rust tracing on at DEBUG (`new Tracing(Debug).turnOn()`), and the
 * Olm machine logs while it is created: turnOn is wrapped so it keeps our level.
 */
async function quietRustTracing(): Promise<void> {
  if (SDK_LOG_LEVEL === 'debug' || SDK_LOG_LEVEL === 'trace') return;
  const wasm = (await import('@matrix-org/matrix-sdk-crypto-wasm' as string)) as {
    Tracing: { prototype: { turnOn(): void; turnOff(): void; minLevel: number; __hearthQuiet?: boolean } };
    LoggerLevel: Record<string, number>;
  };
  const proto = wasm.Tracing.prototype;
  if (proto.__hearthQuiet) return;
  const turnOn = proto.turnOn;
  const turnOff = proto.turnOff;
  const level = wasm.LoggerLevel[SDK_LOG_LEVEL === 'silent' ? 'Error' : SDK_LOG_LEVEL[0].toUpperCase() + SDK_LOG_LEVEL.slice(1)];
  proto.turnOn = function (this: typeof proto) {
    this.minLevel = level;
    if (SDK_LOG_LEVEL === 'silent') turnOff.call(this);
    else turnOn.call(this);
  };
  proto.__hearthQuiet = true;
}

let loaded: Promise<SdkModule> | undefined;

/** The matrix-js-sdk module, loaded once after the shims and with its logger quietened. */
export function sdk(): Promise<SdkModule> {
  loaded ??= (async () => {
    installNode20Shims();
    await quietSdkLogger();
    await quietRustTracing();
    const m = (await import('matrix-js-sdk')) as SdkModule;
    // Loggers created while the SDK's modules loaded are pinned here.
    await quietSdkLogger();
    return m;
  })();
  return loaded;
}

/**
 * Each client gets its own connection pool, destroyed when the client stops: the
 * SDK can leave a freshly opened, request-less connection behind in the shared
 * global pool when it is stopped mid-request, and such a connection keeps the
 * server's close() waiting (~70 s) even after every client has stopped.
 */
const pools = new WeakMap<object, { destroy(): Promise<void> }>();

/**
 * Checks a JSON answer against the spec's schema (spec-schemas.ts). The SDK retries or swallows
 * a failed request, so a mismatch is recorded for the server, whose stop() then fails.
 */
async function checkAgainstSpec(input: unknown, init: Record<string, unknown> | undefined, res: Response): Promise<void> {
  if (!res.headers.get('content-type')?.includes('application/json')) return;
  const url = new URL(String(input));
  const method = String(init?.method ?? 'GET');
  let body: unknown;
  try {
    body = await res.clone().json();
  } catch {
    return; // aborted, or not JSON after all: nothing to check
  }
  const m = checkResponse(method, url.pathname + url.search, res.status, body);
  if (m) recordClientMismatch(url.origin, describeMismatch(m, method, url.pathname, body));
}

async function pooledFetch(): Promise<{ fetchFn: typeof fetch; pool: { destroy(): Promise<void> } }> {
  const undici = await import('undici');
  const pool = new undici.Agent({ keepAliveTimeout: 2_000 });
  const fetchFn = (async (input: unknown, init?: Record<string, unknown>) => {
    const res = (await undici.fetch(input as string, { ...(init as object), dispatcher: pool } as never)) as unknown as Response;
    await checkAgainstSpec(input, init, res);
    return res;
  }) as unknown as typeof fetch;
  return { fetchFn, pool };
}

export interface Credentials {
  userId: string;
  accessToken: string;
  deviceId: string;
}

/** Rejects with a readable message if `p` has not settled within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * Polls `check` until it returns something truthy (which is returned). Use it for
 * "the other client eventually sees X": the SDK updates its models from /sync.
 */
export async function waitUntil<T>(check: () => T | undefined | null | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = check();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Like waitUntil for a check that has to ask the server (each call awaited before the next). */
export async function waitUntilAsync<T>(check: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Logs in over the client-server API with the SDK's loginRequest (m.login.password), as Element does. */
export async function sdkLogin(baseUrl: string, user: { userId: string; password: string }, deviceId?: string): Promise<Credentials> {
  const { createClient } = await sdk();
  const { fetchFn, pool } = await pooledFetch();
  const anon = createClient({ baseUrl, fetchFn });
  try {
    const res = await anon.loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: user.userId },
      password: user.password,
      initial_device_display_name: 'hearth e2e',
      ...(deviceId ? { device_id: deviceId } : {}),
    });
    return { userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id };
  } finally {
    anon.stopClient();
    await pool.destroy();
  }
}

export interface ClientOptions {
  /** Rust crypto with an in-memory store (no IndexedDB in Node). */
  crypto?: boolean;
  initialSyncLimit?: number;
  /** Element's default: the server sends only the members a timeline needs (lazy_load_members in the filter). */
  lazyLoadMembers?: boolean;
  /** How long to wait for the first sync. */
  timeoutMs?: number;
  /** Threads as Element shows them: thread timelines, /threads, thread receipts. */
  threadSupport?: boolean;
}

/** A client for existing credentials (e.g. a token saved before a restart), not yet started. */
export async function createSdkClient(baseUrl: string, creds: Credentials, opts: ClientOptions = {}): Promise<MatrixClient> {
  const { createClient } = await sdk();
  const { fetchFn, pool } = await pooledFetch();
  const client = createClient({
    baseUrl,
    fetchFn,
    userId: creds.userId,
    accessToken: creds.accessToken,
    deviceId: creds.deviceId,
  });
  pools.set(client, pool);
  if (opts.crypto) {
    await client.initRustCrypto({ useIndexedDB: false });
  }
  return client;
}

/**
 * Starts the sync loop and waits until the client reports PREPARED (first sync
 * processed) or SYNCING. A sync loop that only reports ERROR/RECONNECTING is a
 * failure, with the last sync error in the message.
 */
export async function startSdkClient(client: MatrixClient, opts: ClientOptions = {}): Promise<void> {
  const { ClientEvent } = await sdk();
  const timeoutMs = opts.timeoutMs ?? 15_000;
  let lastError: unknown;
  let onSync!: (state: string, prev: string | null, data?: { error?: unknown }) => void;
  const ready = new Promise<void>((resolve) => {
    onSync = (state, _prev, data) => {
      if (state === 'ERROR' || state === 'RECONNECTING') lastError = data?.error ?? lastError;
      if (state === 'PREPARED' || state === 'SYNCING') resolve();
    };
    client.on(ClientEvent.Sync, onSync as never);
  });
  try {
    await client.startClient({
      initialSyncLimit: opts.initialSyncLimit ?? 20,
      lazyLoadMembers: opts.lazyLoadMembers ?? false,
      threadSupport: opts.threadSupport ?? false,
    });
    await withTimeout(ready, timeoutMs, `first sync of ${client.getUserId()}`).catch((e: Error) => {
      throw new Error(lastError ? `${e.message}; last sync error: ${describeError(lastError)}` : e.message);
    });
  } finally {
    client.off(ClientEvent.Sync, onSync as never);
  }
}

/** Logs `user` in with the SDK (a new device), creates the client (with crypto if asked) and waits for its first sync. */
export async function loginAndStart(server: TestServer, user: { userId: string; password: string }, opts: ClientOptions = {}): Promise<MatrixClient> {
  const creds = await sdkLogin(server.url, user);
  const client = await createSdkClient(server.url, creds, opts);
  await startSdkClient(client, opts);
  return client;
}

/** Stops sync, crypto and any in-flight request so that `node --test` can exit. Safe to call twice. */
export async function stopClients(...clients: (MatrixClient | undefined)[]): Promise<void> {
  for (const c of clients) {
    if (!c) continue;
    try {
      c.stopClient(); // also stops the crypto backend
      c.http.abort();
    } catch {
      /* already stopped */
    }
    c.removeAllListeners();
    await pools.get(c)?.destroy();
    pools.delete(c);
  }
  // Let aborted fetches settle before the server goes away.
  await new Promise((r) => setTimeout(r, 10));
}

export function describeError(e: unknown): string {
  if (!e) return String(e);
  const m = e as { httpStatus?: number; errcode?: string; data?: unknown; message?: string };
  if (m.httpStatus) return `HTTP ${m.httpStatus} ${m.errcode ?? ''} ${m.message ?? ''} ${JSON.stringify(m.data ?? {})}`;
  return m.message ?? String(e);
}

export interface ServerWatch {
  /** Every request answered with a 5xx: "METHOD path -> status". */
  serverErrors: string[];
  /** Requests answered 404 M_UNRECOGNIZED or 405: endpoints the clients wanted that the server lacks. */
  unrecognized: Set<string>;
}

/**
 * Watches every answer the server gives while clients run, across restarts, so a
 * test can assert that nothing the SDK asked for (and might have retried quietly)
 * failed with a 5xx.
 */
export function watchServer(server: TestServer): ServerWatch {
  const watch: ServerWatch = { serverErrors: [], unrecognized: new Set() };
  const attach = () => {
    server.hs.app.server.on('request', (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      const end = res.end.bind(res) as (...a: unknown[]) => typeof res;
      // The body tells an unknown route (M_UNRECOGNIZED) from a route answering "no such thing".
      res.end = ((chunk?: unknown, ...rest: unknown[]) => {
        if ((res.statusCode === 404 || res.statusCode === 405) && chunk && String(chunk).includes('M_UNRECOGNIZED')) {
          watch.unrecognized.add(`${req.method} ${path.replace(/(!|%21)[^/]+/g, '{roomId}').replace(/(@|%40)[^/]+/g, '{userId}')}`);
        }
        return end(chunk, ...rest);
      }) as typeof res.end;
      res.once('finish', () => {
        if (res.statusCode >= 500) watch.serverErrors.push(`${req.method} ${path} -> ${res.statusCode}`);
      });
    });
  };
  attach();
  const restart = server.restart.bind(server);
  server.restart = async () => {
    await restart();
    attach();
  };
  return watch;
}
