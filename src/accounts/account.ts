import type { Context } from '../context.js';
import type { Requester } from '../http/requester.js';
import { checkNewPassword, hashPassword } from './password-hash.js';
import { updateProfileRow } from './profile-store.js';
import { searchText } from './search-text.js';
import type { Sessions } from './sessions.js';
import type { UiaRequest, UserInteractiveAuth } from './uia.js';
import { markDeactivated, setPasswordHash } from './user-store.js';

type RequestInfo = Omit<UiaRequest, 'body' | 'userId'>;

const PASSWORD_FLOWS = [['m.login.password']];

/** Password change and deactivation (spec: "Account management"). */
export class Account {
  constructor(
    private readonly ctx: Context,
    private readonly sessions: Sessions,
    private readonly uia: UserInteractiveAuth,
  ) {}

  /**
   * POST /account/password. With `logout_devices` (default true) every
   * other device is logged out and deleted; the device making the request
   * keeps its session.
   */
  async changePassword(requester: Requester, body: { new_password: string; logout_devices?: boolean }, req: RequestInfo): Promise<object> {
    checkNewPassword(body.new_password);
    await this.uia.check({ ...req, body, userId: requester.userId }, PASSWORD_FLOWS);
    const hash = await hashPassword(body.new_password);
    const logoutDevices = body.logout_devices !== false;
    const { deleted, revoked } = await this.ctx.db.transaction().execute(async (trx) => {
      await setPasswordHash(trx, requester.userId, hash);
      if (!logoutDevices) return { deleted: [], revoked: [] };
      return this.sessions.deleteDevicesIn(trx, requester.userId, undefined, { except: requester.deviceId });
    });
    this.sessions.publishRevoked(revoked);
    if (deleted.length > 0) await this.ctx.services.e2ee.onDevicesChanged(requester.userId, deleted);
    return {};
  }

  /**
   * POST /account/deactivate: the password is wiped, every device and token
   * deleted, and the user leaves every room. With `erase` the profile is
   * cleared too. The user id stays taken for good.
   */
  async deactivate(requester: Requester, body: { erase?: boolean }, req: RequestInfo): Promise<object> {
    const { userId } = requester;
    await this.uia.check({ ...req, body, userId }, PASSWORD_FLOWS);
    const { deleted, revoked } = await this.ctx.db.transaction().execute(async (trx) => {
      await markDeactivated(trx, userId);
      if (body.erase === true) {
        await updateProfileRow(trx, userId, { displayname: null, avatar_url: null, fields: null, search_text: searchText(userId, null) });
      }
      return this.sessions.deleteDevicesIn(trx, userId, undefined);
    });
    this.sessions.publishRevoked([...revoked, userId]);
    if (deleted.length > 0) await this.ctx.services.e2ee.onDevicesChanged(userId, deleted);
    await this.ctx.services.rooms.leaveAllRooms(userId);
    // No third-party ids are ever bound here, so there is nothing to unbind.
    return { id_server_unbind_result: 'success' };
  }
}
