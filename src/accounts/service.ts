import type { Context } from '../context.js';
import type { Requester } from '../http/requester.js';

export interface Profile {
  displayname?: string;
  avatar_url?: string;
}

/**
 * Users, devices, access tokens, login, registration, user-interactive auth
 * and profiles. Methods below "cross-domain API" are called by other domains
 * and keep their signatures.
 */
export class AccountsService {
  constructor(private readonly ctx: Context) {}

  // ---- cross-domain API ----

  /** Resolves an access token; throws M_UNKNOWN_TOKEN (401) when it is unknown, expired or the user is deactivated. */
  async authenticate(token: string): Promise<Requester> {
    void token;
    throw new Error('unimplemented');
  }

  /** Creates a user (CLI, shared-secret registration). Throws M_USER_IN_USE / M_INVALID_USERNAME. */
  async createUser(opts: { localpart: string; password?: string; admin?: boolean; displayName?: string }): Promise<{ userId: string }> {
    void opts;
    throw new Error('unimplemented');
  }

  async getProfile(userId: string): Promise<Profile | null> {
    void userId;
    throw new Error('unimplemented');
  }

  async userExists(userId: string): Promise<boolean> {
    void userId;
    throw new Error('unimplemented');
  }
}
