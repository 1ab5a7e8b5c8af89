import type { Context } from '../context.js';
import { MatrixError, missingToken } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import type { ValidatedThreepid } from './email-validation.js';
import { checkNewPassword, hashPassword } from './password-hash.js';
import { updateProfileRow } from './profile-store.js';
import { searchText } from './search-text.js';
import type { Sessions } from './sessions.js';
import type { Threepids } from './threepids.js';
import type { UiaRequest, UserInteractiveAuth } from './uia.js';
import { getUser, markDeactivated, setPasswordHash } from './user-store.js';

type RequestInfo = Omit<UiaRequest, 'body' | 'userId'>;

const PASSWORD_FLOWS = [['m.login.password']];
const EMAIL_STAGE = 'm.login.email.identity';

/** Password change and deactivation (spec: "Account management"). */
export class Account {
  constructor(
    private readonly ctx: Context,
    private readonly sessions: Sessions,
    private readonly uia: UserInteractiveAuth,
    private readonly threepids: Threepids,
  ) {}

  /**
   * POST /account/password. With `logout_devices` (default true) every
   * other device is logged out and deleted, with the pushers those devices
   * set; the device making the request keeps its session.
   *
   * Without an access token it is a password reset: the only flow is
   * `m.login.email.identity`, and the account is the one the validated
   * address was added to (password_management.yaml).
   */
  async changePassword(requester: Requester | null, body: { new_password: string; logout_devices?: boolean }, req: RequestInfo): Promise<object> {
    checkNewPassword(body.new_password);
    const email = this.ctx.config.email !== null;
    if (!requester && !email) throw missingToken();
    const flows = requester ? [...PASSWORD_FLOWS, ...(email ? [[EMAIL_STAGE]] : [])] : [[EMAIL_STAGE]];
    const results = await this.uia.check({ ...req, body, userId: requester?.userId ?? null }, flows);
    let userId = requester?.userId;
    const proven = results[EMAIL_STAGE] as ValidatedThreepid | undefined;
    if (proven) {
      const owner = await this.threepids.ownerOf(proven.medium, proven.address);
      if (owner === undefined || (userId !== undefined && owner !== userId)) {
        throw new MatrixError(400, 'M_THREEPID_NOT_FOUND', 'No account has this email address');
      }
      userId = owner;
      if ((await getUser(this.ctx.db, owner))?.deactivated) throw new MatrixError(400, 'M_THREEPID_NOT_FOUND', 'No account has this email address');
    }
    if (userId === undefined) throw missingToken();
    const hash = await hashPassword(body.new_password);
    const logoutDevices = body.logout_devices !== false;
    const keep = requester?.userId === userId ? requester.deviceId : undefined;
    const target = userId;
    const done = await this.ctx.db.transaction().execute(async (trx) => {
      await setPasswordHash(trx, target, hash);
      if (!logoutDevices) return null;
      if (keep !== undefined) {
        await this.ctx.services.push.removePushersOfOtherDevices(trx, target, keep);
        return this.sessions.deleteDevicesIn(trx, target, undefined, { except: keep });
      }
      // A reset by email keeps no device: whoever forgot the password may not be the only one holding a session.
      return this.sessions.deleteDevicesIn(trx, target, undefined);
    });
    if (done) await this.sessions.finishDelete(done);
    return {};
  }

  /**
   * POST /account/deactivate. One transaction marks the user deactivated
   * (password wiped), deletes every device with its tokens, keys and
   * to-device inbox and records the device list change, and with `erase`
   * clears the profile, and removes its email addresses: a failure leaves
   * the account as it was. Identity servers are asked to unbind after commit. Leaving the
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
      await this.threepids.removeAllIn(trx, userId);
      return this.sessions.deleteDevicesIn(trx, userId, undefined);
    });
    // The user id drops every cached token of the user, whichever device it was for.
    await this.sessions.finishDelete(done, [userId]);
    await this.ctx.services.rooms.leaveAllRooms(userId);
    return { id_server_unbind_result: await this.threepids.unbindAll(userId) };
  }
}
