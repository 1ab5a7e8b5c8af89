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
   * other device is logged out and deleted, with the pushers those devices
   * set; the device making the request keeps its session.
   */
  async changePassword(requester: Requester, body: { new_password: string; logout_devices?: boolean }, req: RequestInfo): Promise<object> {
    checkNewPassword(body.new_password);
    await this.uia.check({ ...req, body, userId: requester.userId }, PASSWORD_FLOWS);
    const hash = await hashPassword(body.new_password);
    const logoutDevices = body.logout_devices !== false;
    const done = await this.ctx.db.transaction().execute(async (trx) => {
      await setPasswordHash(trx, requester.userId, hash);
      if (!logoutDevices) return null;
      await this.ctx.services.push.removePushersOfOtherDevices(trx, requester.userId, requester.deviceId);
      return this.sessions.deleteDevicesIn(trx, requester.userId, undefined, { except: requester.deviceId });
    });
    if (done) await this.sessions.finishDelete(done);
    return {};
  }

  /**
   * POST /account/deactivate. One transaction marks the user deactivated
   * (password wiped), deletes every device with its tokens, keys and
   * to-device inbox and records the device list change, and with `erase`
   * clears the profile: a failure leaves the account as it was. Leaving the
   * rooms comes after commit, through the rooms service (each leave is an
   * event through its room's pipeline, in that room's transaction). If it
   * fails part way, the account stays deactivated with some memberships
   * left, and nothing retries the leaves yet. The user id stays taken.
   */
  async deactivate(requester: Requester, body: { erase?: boolean }, req: RequestInfo): Promise<object> {
    const { userId } = requester;
    await this.uia.check({ ...req, body, userId }, PASSWORD_FLOWS);
    const done = await this.ctx.db.transaction().execute(async (trx) => {
      await markDeactivated(trx, userId);
      if (body.erase === true) {
        await updateProfileRow(trx, userId, { displayname: null, avatar_url: null, fields: null, search_text: searchText(userId, null) });
      }
      await this.sessions.revokeIn(trx, [userId]);
      return this.sessions.deleteDevicesIn(trx, userId, undefined);
    });
    // The user id drops every cached token of the user, whichever device it was for.
    await this.sessions.finishDelete(done, [userId]);
    await this.ctx.services.rooms.leaveAllRooms(userId);
    // No third-party ids are ever bound here, so there is nothing to unbind.
    return { id_server_unbind_result: 'success' };
  }
}
