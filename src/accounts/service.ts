import type { Context, Lifecycle } from '../context.js';
import { openIdTokenUser } from './openid.js';
import { listDevicesOfUsers } from './device-store.js';
import type { Requester } from '../http/requester.js';
import { Account } from './account.js';
import { Devices } from './devices.js';
import { EmailValidation } from './email-validation.js';
import { Login } from './login.js';
import { LoginTokens } from './login-token.js';
import { Moderation } from './moderation.js';
import { insertNewUser } from './new-user.js';
import { checkNewPassword, hashPassword } from './password-hash.js';
import { searchProfiles, type DirectoryHit } from './profile-store.js';
import { Profiles, type Profile } from './profiles.js';
import { Registration } from './registration.js';
import { searchWords } from './search-text.js';
import { Sessions } from './sessions.js';
import { SharedSecretRegistration } from './shared-secret.js';
import { Threepids } from './threepids.js';
import { UserInteractiveAuth } from './uia.js';
import { getUser, selectGuests } from './user-store.js';
import { checkNewLocalpart, normaliseLocalpart } from './user-ids.js';

export type { Profile } from './profiles.js';

/** Search terms beyond this many words add nothing but query cost. */
const MAX_SEARCH_WORDS = 8;

/**
 * Users, devices, access tokens, login, registration, user-interactive auth
 * and profiles. Methods below "cross-domain API" are called by other domains
 * and keep their signatures; the parts (sessions, registration, login, ...)
 * serve this domain's routes.
 */
export class AccountsService implements Lifecycle {
  readonly sessions: Sessions;
  readonly uia: UserInteractiveAuth;
  readonly login: Login;
  readonly loginTokens: LoginTokens;
  readonly moderation: Moderation;
  readonly registration: Registration;
  readonly sharedSecret: SharedSecretRegistration;
  readonly account: Account;
  readonly devices: Devices;
  readonly profiles: Profiles;
  readonly emailValidation: EmailValidation;
  readonly threepids: Threepids;

  constructor(private readonly ctx: Context) {
    this.sessions = new Sessions(ctx);
    // The stages reach `login` and `registration` only when called, after the constructor.
    const stages = {
      'm.login.dummy': async () => {},
      'm.login.password': (auth: Record<string, unknown>, req: Parameters<Login['checkPasswordStage']>[1]) => this.login.checkPasswordStage(auth, req),
      'm.login.registration_token': (auth: Record<string, unknown>) => this.registration.checkTokenStage(auth),
      'm.login.email.identity': (auth: Record<string, unknown>) => this.emailValidation.checkStage(auth),
    };
    this.uia = new UserInteractiveAuth(ctx, stages);
    this.emailValidation = new EmailValidation(ctx);
    this.threepids = new Threepids(ctx, this.uia, this.emailValidation);
    this.loginTokens = new LoginTokens(ctx, this.uia);
    this.login = new Login(ctx, this.sessions, this.loginTokens);
    this.moderation = new Moderation(ctx, this.sessions);
    this.registration = new Registration(ctx, this.sessions, this.uia, this.threepids);
    this.sharedSecret = new SharedSecretRegistration(ctx, this.sessions);
    this.account = new Account(ctx, this.sessions, this.uia, this.threepids);
    this.devices = new Devices(ctx, this.sessions, this.uia);
    this.profiles = new Profiles(ctx);
  }

  async stop(): Promise<void> {
    await this.sessions.stop();
  }

  // ---- cross-domain API ----

  /**
   * Resolves an access token; throws M_UNKNOWN_TOKEN (401) when it is unknown, expired or the user is deactivated.
   * `seen.ip`, when the caller knows it, is recorded as the device's last-seen address.
   */
  async authenticate(token: string, seen?: { ip?: string }): Promise<Requester> {
    return this.sessions.authenticate(token, seen);
  }

  /** Creates a user (CLI, shared-secret registration). Throws M_USER_IN_USE / M_INVALID_USERNAME. */
  async createUser(opts: { localpart: string; password?: string; admin?: boolean; displayName?: string }): Promise<{ userId: string }> {
    const localpart = normaliseLocalpart(opts.localpart);
    checkNewLocalpart(localpart, this.ctx.serverName);
    const userId = `@${localpart}:${this.ctx.serverName}`;
    if (opts.password !== undefined) checkNewPassword(opts.password);
    const passwordHash = opts.password !== undefined ? await hashPassword(opts.password) : null;
    await this.ctx.db.transaction().execute((trx) =>
      insertNewUser(trx, { userId, passwordHash, admin: opts.admin === true, displayName: opts.displayName, now: this.ctx.now() }),
    );
    return { userId };
  }

  /** Display name and avatar of a local user; null when the user is unknown. */
  async getProfile(userId: string): Promise<Profile | null> {
    return this.profiles.getProfile(userId);
  }

  /** The user an OpenID token was issued to (federation openid/userinfo), or null when unknown or expired. */
  openIdTokenUser(token: string): Promise<string | null> {
    return openIdTokenUser(this.ctx, token);
  }

  /** True when the user id is registered here (deactivated users included: their ids stay taken). */
  /** Devices of several users (one query), for key queries and device lists. */
  async getDevices(userIds: string[]): Promise<Map<string, { deviceId: string; displayName?: string }[]>> {
    const out = new Map<string, { deviceId: string; displayName?: string }[]>(userIds.map((u) => [u, []]));
    for (const d of await listDevicesOfUsers(this.ctx.db, userIds)) {
      out.get(d.user_id)?.push({ deviceId: d.device_id, displayName: d.display_name ?? undefined });
    }
    return out;
  }

  /** The guest accounts among these users (spec: modules/guest_access). */
  async guestsAmong(userIds: string[]): Promise<string[]> {
    return userIds.length === 0 ? [] : selectGuests(this.ctx.db, userIds);
  }

  async userExists(userId: string): Promise<boolean> {
    return (await getUser(this.ctx.db, userId)) !== undefined;
  }

  /**
   * Active local users matching every word of `term` as a word prefix of their id or display
   * name (user directory), in user id order: `max` of them after the first `offset`.
   */
  async directoryCandidates(term: string, max: number, offset = 0): Promise<DirectoryHit[]> {
    const words = [...new Set(searchWords(term))].slice(0, MAX_SEARCH_WORDS);
    if (words.length === 0) return [];
    return searchProfiles(this.ctx.db, words, max, offset);
  }
}
