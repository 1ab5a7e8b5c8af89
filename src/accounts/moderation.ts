/**
 * Account locking and suspension by a server administrator (client-server-api "Account
 * moderation", admin.yaml `/admin/lock/{userId}` and `/admin/suspend/{userId}`, spec v1.18).
 * The flags live on the user row; the access-token cache is dropped for the user in the same
 * transaction, so every node sees the change on the user's next request.
 */
import type { Context } from '../context.js';
import { forbidden, invalidParam, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import type { Route } from '../http/router.js';
import type { Sessions } from './sessions.js';
import { getUser } from './user-store.js';

export type ModerationFlag = 'locked' | 'suspended';

export class Moderation {
  constructor(
    private readonly ctx: Context,
    private readonly sessions: Sessions,
  ) {}

  /** Whether the flag is set on a local, active user. Admins only, checked before any lookup (no enumeration). */
  async get(requester: Requester, userId: string, flag: ModerationFlag): Promise<boolean> {
    this.assertAdmin(requester);
    const user = await this.localUser(userId);
    return user[flag] === 1;
  }

  async set(requester: Requester, userId: string, flag: ModerationFlag, value: boolean): Promise<boolean> {
    this.assertAdmin(requester);
    if (userId === requester.userId) throw forbidden('You cannot change this on your own account');
    const user = await this.localUser(userId);
    if (user.is_admin === 1) throw forbidden('Another administrator cannot be locked or suspended');
    await this.ctx.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ [flag]: value ? 1 : 0 }).where('user_id', '=', userId).execute();
      await this.sessions.revokeIn(trx, [userId]);
    });
    this.sessions.publishRevoked([userId]);
    return value;
  }

  private assertAdmin(requester: Requester): void {
    if (!requester.isAdmin) throw forbidden('You are not a server administrator');
  }

  private async localUser(userId: string) {
    const colon = userId.indexOf(':');
    if (!userId.startsWith('@') || colon < 0 || userId.slice(colon + 1) !== this.ctx.serverName) {
      throw invalidParam('User does not belong to the local server');
    }
    const user = await getUser(this.ctx.db, userId);
    if (!user || user.deactivated) throw notFound('User not found');
    return user;
  }
}

export function moderationRoutes(ctx: Context): Route[] {
  const moderation = () => ctx.services.accounts.moderation;
  return (['locked', 'suspended'] as const).flatMap((flag): Route[] => {
    const path = `/admin/${flag === 'locked' ? 'lock' : 'suspend'}/:userId`;
    return [
      {
        method: 'GET',
        path,
        versions: ['v1'],
        handler: async (req) => ({ [flag]: await moderation().get(req.requester, req.params.userId, flag) }),
      },
      {
        method: 'PUT',
        path,
        versions: ['v1'],
        schema: { body: { type: 'object', required: [flag], properties: { [flag]: { type: 'boolean' } } } },
        handler: async (req) => ({ [flag]: await moderation().set(req.requester, req.params.userId, flag, req.body[flag]) }),
      },
    ];
  });
}
