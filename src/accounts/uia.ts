import { createHash } from 'node:crypto';
import type { Context } from '../context.js';
import { MatrixError, badJson } from '../http/errors.js';
import { newId } from './secrets.js';
import { deleteUiaSessionsBefore, getUiaSession, insertUiaSession, updateUiaSession } from './uia-session-store.js';

/** How long a user-interactive auth session lives. */
const SESSION_TTL_MS = 30 * 60 * 1000;
/** Expired sessions are swept at most this often. */
const SWEEP_INTERVAL_MS = 60 * 1000;

export interface UiaRequest {
  method: string;
  /** The URL path without the query string. */
  path: string;
  body: Record<string, unknown>;
  /** The authenticated user, or null (registration). */
  userId: string | null;
}

/** A stage attempt that failed but may be retried (wrong password, bad token). */
export class StageFailed extends Error {
  constructor(
    readonly errcode: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Checks one stage's auth dict; throws StageFailed when the attempt is wrong. What it resolves to
 * (other than undefined) is kept with the session as that stage's result (`check` returns them).
 */
export type StageChecker = (auth: Record<string, unknown>, req: UiaRequest) => Promise<unknown>;

/** What the completed stages established, by stage type (e.g. the address `m.login.email.identity` proved). */
export type StageResults = Record<string, unknown>;

/**
 * The 401 answer of user-interactive auth: flows, params, session and
 * completed stages, plus errcode/error only when a stage attempt failed
 * (clients show those as an error, so a plain "auth needed" carries none).
 */
export class UiaRequired extends MatrixError {
  constructor(
    private readonly state: { flows: string[][]; params: Record<string, unknown>; session: string; completed: string[] },
    private readonly failure?: { errcode: string; error: string },
  ) {
    super(401, failure?.errcode ?? 'M_FORBIDDEN', failure?.error ?? 'Additional authentication required');
  }

  override toJSON(): Record<string, unknown> {
    const body: Record<string, unknown> = {
      flows: this.state.flows.map((stages) => ({ stages })),
      params: this.state.params,
      session: this.state.session,
    };
    if (this.state.completed.length > 0) body.completed = this.state.completed;
    if (this.failure) Object.assign(body, this.failure);
    return body;
  }
}

/** Key-sorted JSON, so the same body always hashes the same. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** The request body without `auth`, hashed; null for an empty body (a client probing for flows). */
function requestBodyHash(body: Record<string, unknown>): string | null {
  const rest = { ...body };
  delete rest.auth;
  if (Object.keys(rest).length === 0) return null;
  return createHash('sha256').update(stableJson(rest)).digest('hex');
}

function isPrefix(prefix: string[], of: string[]): boolean {
  return prefix.length <= of.length && prefix.every((s, i) => of[i] === s);
}

/**
 * User-interactive authentication (spec: client-server API, "User-Interactive
 * Authentication API"). Sessions live in the database so any node can carry
 * on a session another node started. A session is bound to the request that
 * started it (method, path, user and body) so a completed session cannot
 * authorise a different operation.
 */
export class UserInteractiveAuth {
  private lastSweep = 0;

  constructor(
    private readonly ctx: Context,
    private readonly checkers: Record<string, StageChecker>,
  ) {}

  /** Resolves, with the stages' results, when a flow is complete; otherwise throws UiaRequired (401) or a request error. */
  async check(req: UiaRequest, flows: string[][], params: Record<string, unknown> = {}): Promise<StageResults> {
    const auth = req.body.auth;
    if (auth === undefined || auth === null) {
      const session = await this.createSession(req, params);
      throw new UiaRequired({ flows, params, session, completed: [] });
    }
    if (typeof auth !== 'object' || Array.isArray(auth)) throw badJson('auth must be an object');
    const authDict = auth as Record<string, unknown>;
    const sessionId = authDict.session;
    const type = authDict.type;
    if (sessionId !== undefined && typeof sessionId !== 'string') throw badJson('auth.session must be a string');
    if (type !== undefined && typeof type !== 'string') throw badJson('auth.type must be a string');

    let session: string;
    let completed: string[];
    let results: StageResults = {};
    if (sessionId === undefined) {
      // A client may attempt a stage straight away; the session starts here.
      session = await this.createSession(req, params);
      completed = [];
    } else {
      const row = await getUiaSession(this.ctx.db, sessionId);
      if (!row || row.created_ts < this.ctx.now() - SESSION_TTL_MS) {
        throw new MatrixError(400, 'M_UNKNOWN', 'Unknown or expired user-interactive auth session');
      }
      const bodyHash = requestBodyHash(req.body);
      const sameRequest =
        row.method === req.method &&
        row.path === req.path &&
        row.user_id === req.userId &&
        (row.body_hash === null || row.body_hash === bodyHash);
      if (!sameRequest) {
        throw new MatrixError(403, 'M_FORBIDDEN', 'Requested operation has changed during the user-interactive auth session');
      }
      if (row.body_hash === null && bodyHash !== null) {
        // A session opened by an empty probe belongs to the first real request made with it.
        await updateUiaSession(this.ctx.db, sessionId, { body_hash: bodyHash });
      }
      session = sessionId;
      completed = JSON.parse(row.completed) as string[];
      results = JSON.parse(row.results) as StageResults;
    }
    const state = { flows, params, session, completed };

    if (type !== undefined && !completed.includes(type)) {
      const expected = flows.some((f) => isPrefix(completed, f) && f[completed.length] === type);
      const checker = this.checkers[type];
      if (!expected || !checker) {
        throw new UiaRequired(state, { errcode: 'M_FORBIDDEN', error: `Authentication stage ${type} is not expected here` });
      }
      let result: unknown;
      try {
        result = await checker(authDict, req);
      } catch (e) {
        if (e instanceof StageFailed) throw new UiaRequired(state, { errcode: e.errcode, error: e.message });
        throw e;
      }
      completed = [...completed, type];
      state.completed = completed;
      if (result !== undefined) results = { ...results, [type]: result };
      await updateUiaSession(this.ctx.db, session, { completed: JSON.stringify(completed), results: JSON.stringify(results) });
    }

    if (flows.some((f) => f.length === completed.length && isPrefix(f, completed))) return results;
    throw new UiaRequired(state);
  }

  private async createSession(req: UiaRequest, params: Record<string, unknown>): Promise<string> {
    const now = this.ctx.now();
    if (now - this.lastSweep > SWEEP_INTERVAL_MS) {
      this.lastSweep = now;
      await deleteUiaSessionsBefore(this.ctx.db, now - SESSION_TTL_MS);
    }
    const session = newId();
    await insertUiaSession(this.ctx.db, {
      session_id: session,
      user_id: req.userId,
      method: req.method,
      path: req.path,
      body_hash: requestBodyHash(req.body),
      completed: '[]',
      params: JSON.stringify(params),
      created_ts: now,
      results: '{}',
    });
    return session;
  }
}
