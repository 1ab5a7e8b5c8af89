/**
 * Email validation sessions (client-server API: `/register/email/requestToken`,
 * `/account/password/email/requestToken`, `/account/3pid/email/requestToken`, and the
 * `m.login.email.identity` stage). The homeserver validates addresses itself:
 *
 * 1. requestToken: a session per (address, client_secret), with a fresh token emailed only when
 *    `send_attempt` is higher than the last one seen for that pair (a retried request sends
 *    nothing and answers the same `sid`);
 * 2. the token comes back through `submit_url` (POST, from the client) or the emailed link
 *    (GET, from a browser), which marks the session validated;
 * 3. the validated session proves the address to `m.login.email.identity` or `/account/3pid/add`.
 *
 * Sessions live in the database, so any node can carry on a session another node started.
 */
import type { Context } from '../context.js';
import { clientBaseUrl } from '../config/base-url.js';
import { MatrixError, invalidParam } from '../http/errors.js';
import { canonicalEmail } from '../threepid/address.js';
import { validationEmail, type ValidationPurpose } from '../threepid/emails.js';
import { MailNotSent } from '../threepid/mailer.js';
import { newId, secretsEqual, tokenHash } from './secrets.js';
import { randomBytes } from 'node:crypto';
import { selectThreepidOwner } from './threepids-table.js';
import { StageFailed } from './uia.js';
import {
  deleteValidationSessionsBefore,
  markValidated,
  selectValidationSession,
  selectValidationSessionBySecret,
  upsertValidationSession,
} from './validation-sessions-table.js';

/** How long a token (and its session) stays usable. */
const SESSION_TTL_MS = 24 * 60 * 60 * 1000;
const SWEEP_INTERVAL_MS = 60 * 60 * 1000;
/** client_secret and sid grammar (request_email_validation.yaml). */
const SECRET_RE = /^[0-9a-zA-Z.=_-]{1,255}$/;
/** Where the emailed link and `submit_url` point. */
export const SUBMIT_TOKEN_PATH = '/_hearth/client/v1/threepid/email/submit_token';

export interface RequestTokenBody {
  client_secret: string;
  email: string;
  send_attempt: number;
  next_link?: string;
}

/** An address proven by a validated session. */
export interface ValidatedThreepid {
  medium: 'email';
  address: string;
  validated_ts: number;
}

export const threepidDenied = (what: string) => new MatrixError(403, 'M_THREEPID_DENIED', what);

export function checkClientSecret(secret: unknown): string {
  if (typeof secret !== 'string' || !SECRET_RE.test(secret)) throw invalidParam('client_secret must be 1-255 characters of [0-9a-zA-Z.=_-]');
  return secret;
}

export class EmailValidation {
  private lastSweep = 0;

  constructor(private readonly ctx: Context) {}

  private get mailer() {
    return this.ctx.services.threepid.mailer;
  }

  get enabled(): boolean {
    return this.mailer !== null;
  }

  /** POST .../email/requestToken for registration, password reset or adding an address. */
  async requestToken(purpose: ValidationPurpose, body: RequestTokenBody): Promise<{ sid: string; submit_url: string }> {
    if (!this.mailer) {
      // The spec has M_THREEPID_MEDIUM_NOT_SUPPORTED for adding an address only; the other two have M_THREEPID_DENIED.
      if (purpose === 'add') throw new MatrixError(400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED', 'This homeserver cannot validate email addresses');
      throw threepidDenied('This homeserver cannot validate email addresses');
    }
    const clientSecret = checkClientSecret(body.client_secret);
    const address = canonicalEmail(body.email);
    if (!Number.isSafeInteger(body.send_attempt) || body.send_attempt < 0) throw invalidParam('send_attempt must be a non-negative integer');
    if (body.next_link !== undefined) checkNextLink(body.next_link);

    const owner = await selectThreepidOwner(this.ctx.db, 'email', address);
    if (purpose === 'password' && owner === undefined) throw new MatrixError(400, 'M_THREEPID_NOT_FOUND', 'No account has this email address');
    if (purpose !== 'password' && owner !== undefined) throw new MatrixError(400, 'M_THREEPID_IN_USE', 'This email address is already in use');

    await this.sweep();
    const submitUrl = `${clientBaseUrl(this.ctx.config)}${SUBMIT_TOKEN_PATH}`;
    const existing = await selectValidationSessionBySecret(this.ctx.db, 'email', address, clientSecret);
    if (existing && body.send_attempt <= existing.last_send_attempt) return { sid: existing.sid, submit_url: submitUrl };

    const sid = existing?.sid ?? newId();
    const token = randomBytes(24).toString('base64url');
    const link = `${submitUrl}?${new URLSearchParams({ sid, client_secret: clientSecret, token })}`;
    // Sent before the session is written: a mail that could not go out leaves no token to wait for.
    try {
      await this.mailer.send(validationEmail(address, purpose, this.ctx.serverName, token, link));
    } catch (e) {
      if (!(e instanceof MailNotSent)) throw e;
      this.ctx.logger.warn({ err: e.message }, 'validation email not sent');
      // The SMTP server failed, as an identity server's failure does: 502, and nothing kept to retry.
      throw new MatrixError(502, 'M_UNKNOWN', 'The validation email could not be sent; try again later');
    }
    await upsertValidationSession(this.ctx.db, {
      sid,
      medium: 'email',
      address,
      client_secret: clientSecret,
      last_send_attempt: body.send_attempt,
      token_hash: tokenHash(token),
      next_link: body.next_link ?? null,
      validated_ts: null,
      created_ts: this.ctx.now(),
    });
    // A concurrent request for the same pair may have created the row first: its sid is the one kept.
    const stored = await selectValidationSessionBySecret(this.ctx.db, 'email', address, clientSecret);
    return { sid: stored?.sid ?? sid, submit_url: submitUrl };
  }

  /**
   * The token comes back (submit_url or the emailed link). Answers the errors of the identity
   * service's submitToken: M_INVALID_PARAM, M_SESSION_EXPIRED, M_TOKEN_INCORRECT. Resolves to
   * where a browser goes next (the client's `next_link`), if anywhere.
   */
  async submitToken(sid: unknown, clientSecret: unknown, token: unknown): Promise<{ nextLink: string | null }> {
    if (typeof sid !== 'string' || typeof token !== 'string') throw invalidParam('sid, client_secret and token are required');
    checkClientSecret(clientSecret);
    const row = await selectValidationSession(this.ctx.db, sid);
    if (!row || !secretsEqual(row.client_secret, clientSecret as string)) throw invalidParam('Unknown validation session');
    if (row.created_ts < this.ctx.now() - SESSION_TTL_MS) throw new MatrixError(400, 'M_SESSION_EXPIRED', 'This validation session has expired');
    if (!secretsEqual(row.token_hash, tokenHash(token.trim()))) throw new MatrixError(400, 'M_TOKEN_INCORRECT', 'The token is incorrect');
    await markValidated(this.ctx.db, sid, this.ctx.now());
    return { nextLink: row.next_link };
  }

  /** The address a validated session proves; 403 M_THREEPID_AUTH_FAILED when it proves nothing. */
  async validated(creds: unknown): Promise<ValidatedThreepid> {
    const c = creds !== null && typeof creds === 'object' && !Array.isArray(creds) ? (creds as Record<string, unknown>) : {};
    if (typeof c.sid !== 'string' || typeof c.client_secret !== 'string') throw new MatrixError(400, 'M_MISSING_PARAM', 'sid and client_secret are required');
    const row = await selectValidationSession(this.ctx.db, c.sid);
    const fresh = row !== undefined && row.created_ts >= this.ctx.now() - SESSION_TTL_MS;
    if (!row || !fresh || !secretsEqual(row.client_secret, c.client_secret) || row.validated_ts === null) {
      throw new MatrixError(403, 'M_THREEPID_AUTH_FAILED', 'The email address has not been validated in this session');
    }
    return { medium: 'email', address: row.address, validated_ts: Number(row.validated_ts) };
  }

  /** The `m.login.email.identity` stage: `threepid_creds` name a validated session; its address is the stage's result. */
  readonly checkStage = async (auth: Record<string, unknown>): Promise<ValidatedThreepid> => {
    try {
      return await this.validated(auth.threepid_creds ?? auth.threepidCreds);
    } catch (e) {
      // A failed stage is answered 401 with the flows; M_UNAUTHORIZED is the code for "not proven".
      if (e instanceof MatrixError) throw new StageFailed(e.errcode === 'M_THREEPID_AUTH_FAILED' ? 'M_UNAUTHORIZED' : e.errcode, e.message);
      throw e;
    }
  };

  private async sweep(): Promise<void> {
    const now = this.ctx.now();
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    await deleteValidationSessionsBefore(this.ctx.db, now - SESSION_TTL_MS);
  }
}

function checkNextLink(link: string): void {
  let u: URL;
  try {
    u = new URL(link);
  } catch {
    throw invalidParam('next_link must be a URL');
  }
  // A link in an email that runs script or opens a file is not a redirect target.
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw invalidParam('next_link must be an http(s) URL');
}
