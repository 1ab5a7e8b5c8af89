import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from '../context.js';
import { MatrixError, badJson, forbidden } from '../http/errors.js';
import { checkNewPassword, hashPassword } from './password-hash.js';
import { insertNewUser } from './new-user.js';
import { sessionAnswer } from './registration.js';
import { deleteNoncesBefore, insertNonce, takeNonce } from './registration-nonce-store.js';
import type { Sessions } from './sessions.js';
import { checkNewLocalpart, normaliseLocalpart } from './user-ids.js';

/** How long a nonce from GET can be used. */
const NONCE_TTL_MS = 60 * 1000;

export interface SharedSecretBody {
  nonce?: unknown;
  username?: unknown;
  password?: unknown;
  admin?: unknown;
  displayname?: unknown;
  user_type?: unknown;
  mac?: unknown;
}

/**
 * Registration with the server's shared secret, as Synapse's
 * `/_synapse/admin/v1/register` does it, so the tooling written for it
 * (register_new_matrix_user, test harnesses) works here: fetch a nonce,
 * then post the user with an HMAC-SHA1 over
 * `nonce NUL username NUL password NUL (admin|notadmin) [NUL user_type]`.
 * Nonces live in the database (any node may take the POST) and are good
 * once, for 60 seconds.
 */
export class SharedSecretRegistration {
  constructor(
    private readonly ctx: Context,
    private readonly sessions: Sessions,
  ) {}

  private secret(): string {
    const s = this.ctx.config.registration_shared_secret;
    if (!s) throw new MatrixError(400, 'M_UNKNOWN', 'Shared secret registration is not enabled');
    return s;
  }

  async nonce(): Promise<{ nonce: string }> {
    this.secret();
    const now = this.ctx.now();
    await deleteNoncesBefore(this.ctx.db, now - NONCE_TTL_MS);
    const nonce = randomBytes(32).toString('hex');
    await insertNonce(this.ctx.db, nonce, now);
    return { nonce };
  }

  async register(body: SharedSecretBody, ip?: string): Promise<Record<string, unknown>> {
    const secret = this.secret();
    if (typeof body.nonce !== 'string') throw badJson('nonce must be a string');
    if (!(await takeNonce(this.ctx.db, body.nonce, this.ctx.now() - NONCE_TTL_MS))) {
      throw new MatrixError(400, 'M_UNKNOWN', 'Unrecognised nonce');
    }
    const { username, password, displayname, user_type: userType, mac } = body;
    if (typeof username !== 'string' || username.includes('\u0000')) throw badJson('username must be a string without NUL');
    if (typeof password !== 'string' || password.includes('\u0000')) throw badJson('password must be a string without NUL');
    if (body.admin !== undefined && typeof body.admin !== 'boolean') throw badJson('admin must be a boolean');
    if (displayname !== undefined && typeof displayname !== 'string') throw badJson('displayname must be a string');
    if (userType !== undefined && userType !== null && typeof userType !== 'string') throw badJson('user_type must be a string');
    if (typeof mac !== 'string') throw badJson('mac must be a string');
    const admin = body.admin === true;

    const h = createHmac('sha1', secret).update(body.nonce).update('\u0000').update(username).update('\u0000').update(password);
    h.update('\u0000').update(admin ? 'admin' : 'notadmin');
    if (typeof userType === 'string') h.update('\u0000').update(userType);
    const want = h.digest();
    // The shape check looks only at what the caller sent; the comparison with the secret-derived value is constant-time.
    const ok = /^[0-9a-fA-F]{40}$/.test(mac) && timingSafeEqual(want, Buffer.from(mac, 'hex'));
    if (!ok) throw forbidden('HMAC incorrect');

    const localpart = normaliseLocalpart(username);
    checkNewLocalpart(localpart, this.ctx.serverName);
    checkNewPassword(password);
    const userId = `@${localpart}:${this.ctx.serverName}`;
    const passwordHash = await hashPassword(password);
    const session = await this.ctx.db.transaction().execute(async (trx) => {
      await insertNewUser(trx, {
        userId,
        passwordHash,
        admin,
        displayName: typeof displayname === 'string' && displayname !== '' ? displayname : undefined,
        now: this.ctx.now(),
      });
      return this.sessions.openIn(trx, { userId, withRefresh: false, ip });
    });
    await this.sessions.finishOpen(session);
    const answer = sessionAnswer(this.ctx.serverName, session);
    return { user_id: answer.user_id, access_token: answer.access_token, home_server: answer.home_server, device_id: answer.device_id };
  }
}
