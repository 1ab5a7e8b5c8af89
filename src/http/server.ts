import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import Ajv from 'ajv';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyBodyParser,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifySchema,
  type HTTPMethods,
} from 'fastify';
import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { MatrixError, badJson, databaseUnavailable, invalidParam, notJson, tooLarge, unrecognized } from './errors.js';

/** Seconds a client is asked to wait before retrying a 503: a node's reconnect delay (db/connect.ts) is at most 1 s. */
const RETRY_AFTER_S = 1;

const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'X-Requested-With, Content-Type, Authorization',
};

// Request bodies are validated strictly (a string is not a number); query
// strings and path parameters arrive as text and are coerced.
const strictAjv = new Ajv.default({ coerceTypes: false, allErrors: false, removeAdditional: false, strict: false });
const coercingAjv = new Ajv.default({ coerceTypes: 'array', allErrors: false, useDefaults: true, strict: false });

/**
 * The deepest nesting of arrays and objects a JSON body may have. Nothing in the spec nests
 * anywhere near this, and code that walks a body recursively (validation, canonical JSON,
 * storage) must never meet a body deep enough to exhaust the stack.
 */
export const MAX_JSON_DEPTH = 256;

export interface HttpOptions {
  logger: Logger;
  bodyLimit: number;
  /** Serve HTTPS with this PEM certificate chain and key (config `tls`). */
  https?: { cert: Buffer; key: Buffer };
  /** Hooks that must see every route (the request metrics): added before any route is. */
  instrument?: (app: FastifyInstance) => void;
}

/** Fastify with Matrix error shapes, CORS, lenient JSON parsing and 404/405 answers. */
export function createHttpServer(opts: HttpOptions): FastifyInstance {
  // One listener for client and federation APIs; with TLS it is an HTTPS server (same handlers).
  const app = Fastify({
    ...(opts.https ? { https: { cert: opts.https.cert, key: opts.https.key } } : {}),
    loggerInstance: opts.logger as unknown as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit,
    // Per-request lines are logged at debug level by our own hook below.
    logController: new LogController({ disableRequestLogging: true }),
    // Fastify gives each request a child logger bound to a request counter, which pino serialises
    // on every request. Below debug level nothing logs per request, and the error handler names the
    // route itself: requests share the server's logger.
    ...(opts.logger.isLevelEnabled('debug') ? {} : { childLoggerFactory: (logger: FastifyBaseLogger) => logger }),
    forceCloseConnections: 'idle',
    // Matrix ids and transaction ids make long path segments.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1000 },
    // Errors the router finds before any route (a malformed URL, an over-long path parameter)
    // go through the same mapping as every other error.
    frameworkErrors: (err, _req, r) => {
      const e = toMatrixError(err);
      // Written on the raw response: a reply made before any route runs no onSend hook, and Fastify
      // would label it `application/json; charset=utf-8`.
      const body = JSON.stringify(e.toJSON());
      const res = (r as unknown as FastifyReply).raw;
      res.writeHead(e.status, { ...CORS_HEADERS, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    },
    // Requests Node's HTTP parser refuses never reach Fastify: answered here, on the socket.
    clientErrorHandler: answerClientError,
    // Fastify's own answer while closing has no errcode: the preClose hook below answers instead.
    return503OnClosing: false,
  });

  opts.instrument?.(app);

  // Each route is served under several version prefixes with one schema object: compile it once,
  // and only when a request first needs it (hundreds of compiled validators cost idle memory).
  type Validator = ((data: unknown) => boolean) & { errors?: unknown; part: string };
  const compiled = new WeakMap<object, Validator>();
  const validatorFor = (schema: object, httpPart: string): Validator => {
    const cacheable = httpPart === 'body' || httpPart === 'querystring' || httpPart === 'params';
    let v = cacheable ? compiled.get(schema) : undefined;
    if (!v || v.part !== httpPart) {
      v = Object.assign((httpPart === 'body' ? strictAjv : coercingAjv).compile(schema), { part: httpPart });
      if (cacheable) compiled.set(schema, v);
    }
    return v;
  };
  // Ajv checks every schema against the JSON Schema meta-schema before compiling it, and builds
  // that check itself the first time (about 25 ms for each instance): here, while the server
  // starts, rather than in the first request a freshly restarted server answers.
  for (const ajv of [strictAjv, coercingAjv]) ajv.validateSchema({});
  app.setValidatorCompiler(({ schema, httpPart }) => {
    let v: Validator | undefined;
    return (data: unknown) => {
      v ??= validatorFor(schema as object, httpPart ?? '');
      return v(data) ? { value: data } : { error: v.errors as unknown as Error };
    };
  });

  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });

  // Callback-style hooks: an async hook costs a promise per request, on every request.
  app.addHook('onRequest', (_req, reply, done) => {
    reply.headers(CORS_HEADERS);
    if (closing) {
      reply.header('connection', 'close');
      return done(new MatrixError(503, 'M_UNKNOWN', 'The server is shutting down'));
    }
    done();
  });
  // Fastify labels JSON `application/json; charset=utf-8`; the spec's answers are `application/json`
  // (JSON is UTF-8 by definition, RFC 8259).
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (reply.getHeader('content-type') === 'application/json; charset=utf-8') reply.header('content-type', 'application/json');
    done(null, payload);
  });
  // The level is fixed at start; below debug the hook would only cost time.
  if (opts.logger.isLevelEnabled('debug')) {
    app.addHook('onResponse', (req, reply, done) => {
      req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: reply.elapsedTime }, 'request');
      done();
    });
  }

  // Clients send JSON with missing or odd content types; an empty body means {}.
  app.removeAllContentTypeParsers();
  const parseBody: FastifyBodyParser<string> = (req, body, done) => {
    // An unknown endpoint answers 404 M_UNRECOGNIZED whatever its body holds.
    if (req.is404) return done(null, undefined);
    const text = body.trim();
    if (text.length === 0) return done(null, {});
    let parsed: unknown;
    try {
      // A reviver makes parsing several times slower: only when the text may hold the key it drops
      // (written plainly or with \u escapes).
      const risky = text.includes('__proto__') || text.includes('\\u');
      parsed = risky ? JSON.parse(text, rejectProto) : JSON.parse(text);
    } catch {
      return done(notJson(), undefined);
    }
    if (nestedDeeperThan(text, MAX_JSON_DEPTH)) {
      return done(badJson(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
    }
    done(null, parsed);
  };
  // Fastify remembers the parser it chose for each Content-Type it has seen, but not a choice of
  // the catch-all, whose header it would parse again on every request: the type nearly every
  // client sends is named too.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseBody);
  app.addContentTypeParser('*', { parseAs: 'string' }, parseBody);

  app.options('*', async (_req, reply) => {
    reply.code(204).send();
  });

  app.setNotFoundHandler(async (req, reply) => {
    const methods: HTTPMethods[] = ['GET', 'PUT', 'POST', 'DELETE'];
    const path = req.url.split('?')[0];
    const other = methods.some((m) => m !== req.method && app.hasRoute({ method: m, url: path }));
    reply
      .code(other ? 405 : 404)
      .send({ errcode: 'M_UNRECOGNIZED', error: other ? 'Method not allowed' : 'Unrecognized request' });
  });

  app.setErrorHandler(async (err: unknown, req, reply) => {
    const e = toMatrixError(err);
    // While shutting down, the 503s are the planned answer, not failures; a database out of reach
    // (a failover) is the operator's concern, not a bug.
    const route = req.is404 ? undefined : req.routeOptions.url;
    if (e.status === 503 && !closing) req.log.warn({ err, method: req.method, route }, 'request refused: service unavailable');
    else if (e.status >= 500 && !closing) req.log.error({ err, method: req.method, route }, 'request failed');
    // A 503 is temporary (RFC 9110 15.6.4): the client may retry, here or through another node.
    if (e.status === 503) reply.header('retry-after', String(RETRY_AFTER_S));
    reply.code(e.status).headers(CORS_HEADERS).send(e.toJSON());
  });

  return app;
}

/**
 * Whether valid JSON `text` nests arrays and objects deeper than `max`. Brackets inside strings do
 * not count. A text too short to hold that many brackets is not scanned.
 */
export function nestedDeeperThan(text: string, max: number): boolean {
  if (text.length <= 2 * max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/**
 * Answers a request Node's HTTP parser refused (it never reaches Fastify): a Matrix error written
 * on the socket, which is then closed since the rest of the stream cannot be trusted.
 */
function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let e: MatrixError;
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      // The request line (the URL) counts towards the header limit.
      e = new MatrixError(431, 'M_TOO_LARGE', 'Request line or headers too large');
      break;
    case 'HPE_INVALID_METHOD':
      e = new MatrixError(400, 'M_UNRECOGNIZED', 'Unrecognized request method');
      break;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      e = new MatrixError(408, 'M_UNKNOWN', 'Request timed out');
      break;
    default:
      e = new MatrixError(400, 'M_UNKNOWN', 'Malformed HTTP request');
  }
  if (socket.writable) {
    const body = JSON.stringify(e.toJSON());
    const head = [
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}`,
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Connection: close',
      ...Object.entries(CORS_HEADERS).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.write(`${head.join('\r\n')}\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

function rejectProto(key: string, value: unknown): unknown {
  // Dropping __proto__ keeps a parsed body from ever reaching an object prototype.
  return key === '__proto__' ? undefined : value;
}

export function toMatrixError(err: unknown): MatrixError {
  if (err instanceof MatrixError) return err;
  const e = err as { code?: string; statusCode?: number; validation?: unknown; validationContext?: string; message?: string };
  if (e?.validation) {
    const where = e.validationContext;
    const msg = `${where ?? 'request'} ${e.message ?? 'is invalid'}`;
    return where === 'body' ? badJson(msg) : invalidParam(msg);
  }
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return tooLarge();
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return notJson();
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new MatrixError(400, 'M_UNKNOWN', 'Request body size did not match Content-Length');
    case 'FST_ERR_NOT_FOUND':
      return unrecognized();
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new MatrixError(414, 'M_TOO_LARGE', 'A path segment is too long');
    case 'FST_ERR_BAD_URL':
      return invalidParam('Malformed percent-encoding in the URL');
  }
  // PostgreSQL refuses NUL in text (22021) and characters its encoding lacks (22P05): the input was bad.
  if (e?.code === '22021' || e?.code === '22P05') {
    return invalidParam('Strings must not contain NUL characters');
  }
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new MatrixError(e.statusCode, 'M_UNKNOWN', e.message ?? 'Bad request');
  }
  if (isDatabaseUnavailable(err)) return databaseUnavailable();
  return new MatrixError(500, 'M_UNKNOWN', 'Internal server error');
}

export type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema };

/**
 * In `app` (an encapsulated plugin context), every request body is handed to the handler as the
 * unread request stream: uploads are streamed to storage, never parsed or held in memory.
 */
export function passRawBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
}
