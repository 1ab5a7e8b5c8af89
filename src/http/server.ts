import Ajv from 'ajv';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifySchema,
  type HTTPMethods,
} from 'fastify';
import type { Logger } from 'pino';
import { MatrixError, badJson, invalidParam, notJson, tooLarge, unrecognized } from './errors.js';

const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'X-Requested-With, Content-Type, Authorization',
};

// Request bodies are validated strictly (a string is not a number); query
// strings and path parameters arrive as text and are coerced.
const strictAjv = new Ajv.default({ coerceTypes: false, allErrors: false, removeAdditional: false, strict: false });
const coercingAjv = new Ajv.default({ coerceTypes: 'array', allErrors: false, useDefaults: true, strict: false });

export interface HttpOptions {
  logger: Logger;
  bodyLimit: number;
}

/** Fastify with Matrix error shapes, CORS, lenient JSON parsing and 404/405 answers. */
export function createHttpServer(opts: HttpOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger as unknown as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit,
    // Per-request lines are logged at debug level by our own hook below.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Matrix ids and transaction ids make long path segments.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1000 },
  });

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
  app.setValidatorCompiler(({ schema, httpPart }) => {
    let v: Validator | undefined;
    return (data: unknown) => {
      v ??= validatorFor(schema as object, httpPart ?? '');
      return v(data) ? { value: data } : { error: v.errors as unknown as Error };
    };
  });

  // Callback-style hooks: an async hook costs a promise per request, on every request.
  app.addHook('onRequest', (_req, reply, done) => {
    reply.headers(CORS_HEADERS);
    done();
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
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text.length === 0) return done(null, {});
    try {
      // A reviver makes parsing several times slower: only when the text may hold the key it drops
      // (written plainly or with \u escapes).
      const risky = text.includes('__proto__') || text.includes('\\u');
      done(null, risky ? JSON.parse(text, rejectProto) : JSON.parse(text));
    } catch {
      done(notJson(), undefined);
    }
  });

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
    if (e.status >= 500) req.log.error({ err }, 'request failed');
    reply.code(e.status).headers(CORS_HEADERS).send(e.toJSON());
  });

  return app;
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
    case 'FST_ERR_NOT_FOUND':
      return unrecognized();
  }
  // PostgreSQL refuses NUL in text (22021) and characters its encoding lacks (22P05): the input was bad.
  if (e?.code === '22021' || e?.code === '22P05') {
    return invalidParam('Strings must not contain NUL characters');
  }
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new MatrixError(e.statusCode, 'M_UNKNOWN', e.message ?? 'Bad request');
  }
  return new MatrixError(500, 'M_UNKNOWN', 'Internal server error');
}

export type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema };
