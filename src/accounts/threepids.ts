/**
 * The third-party identifiers of accounts (client-server API, "Adding Account Administrative
 * Contact Information"): addresses added after validation (`/account/3pid/add`), listed,
 * deleted; and binds at identity servers (`/account/3pid/bind`, `/unbind`), remembered so a
 * delete or a deactivation can ask the same identity server to unbind.
 */
import type { Context } from '../context.js';
import type { DbOrTx } from '../db/schema.js';
import { MatrixError } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { IdentityServerError } from '../threepid/identity-servers.js';
import { canonicalAddress } from '../threepid/address.js';
import type { EmailValidation, ValidatedThreepid } from './email-validation.js';
import { deleteIdServerBind, deleteThreepid, deleteThreepidsOf, insertIdServerBind, insertThreepid, selectIdServerBinds, selectThreepidOwner, selectThreepidsOf } from './threepids-table.js';
import type { UiaRequest, UserInteractiveAuth } from './uia.js';

type RequestInfo = Omit<UiaRequest, 'body' | 'userId'>;
type UnbindResult = 'success' | 'no-support';

export const threepidInUse = () => new MatrixError(400, 'M_THREEPID_IN_USE', 'This address is already in use by another account');

export class Threepids {
  constructor(
    private readonly ctx: Context,
    private readonly uia: UserInteractiveAuth,
    private readonly email: EmailValidation,
  ) {}

  private get identityServers() {
    return this.ctx.services.threepid.identityServers;
  }

  /** GET /account/3pid */
  async list(userId: string): Promise<{ threepids: { medium: string; address: string; validated_at: number; added_at: number }[] }> {
    const rows = await selectThreepidsOf(this.ctx.db, userId);
    return { threepids: rows.map((r) => ({ medium: r.medium, address: r.address, validated_at: Number(r.validated_ts), added_at: Number(r.added_ts) })) };
  }

  /** The account an address was added to, if any (password reset, login by address). */
  ownerOf(medium: string, address: string): Promise<string | undefined> {
    return selectThreepidOwner(this.ctx.db, medium, address);
  }

  /** Adds a validated address to the account, in the caller's transaction; M_THREEPID_IN_USE when another account has it. */
  async addIn(trx: DbOrTx, userId: string, threepid: ValidatedThreepid): Promise<void> {
    const owner = await selectThreepidOwner(trx, threepid.medium, threepid.address);
    if (owner === userId) return;
    if (owner !== undefined) throw threepidInUse();
    await insertThreepid(trx, { medium: threepid.medium, address: threepid.address, user_id: userId, validated_ts: threepid.validated_ts, added_ts: this.ctx.now() });
  }

  /** POST /account/3pid/add: the password again, then the address the session validated joins the account. */
  async add(requester: Requester, body: { sid: string; client_secret: string }, req: RequestInfo): Promise<object> {
    if (!this.email.enabled) throw new MatrixError(400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED', 'This homeserver cannot validate email addresses');
    await this.uia.check({ ...req, body, userId: requester.userId }, [['m.login.password']]);
    const threepid = await this.email.validated(body);
    try {
      await this.ctx.db.transaction().execute((trx) => this.addIn(trx, requester.userId, threepid));
    } catch (e) {
      if (e instanceof MatrixError) throw e;
      // Two requests adding the same address at once: the primary key let one in.
      if ((await this.ownerOf(threepid.medium, threepid.address)) !== requester.userId) throw threepidInUse();
    }
    return {};
  }

  /**
   * POST /account/3pid/delete: the address leaves the account, and the identity servers it was
   * bound at through this server (or the one named) are asked to unbind it.
   */
  async delete(requester: Requester, body: { medium: string; address: string; id_server?: string }): Promise<{ id_server_unbind_result: UnbindResult }> {
    const address = canonicalAddress(body.medium, body.address);
    await deleteThreepid(this.ctx.db, requester.userId, body.medium, address);
    return { id_server_unbind_result: await this.unbindEverywhere(requester.userId, body.medium, address, body.id_server) };
  }

  /** POST /account/3pid/unbind: only the identity server bind goes; the account keeps the address. */
  async unbind(requester: Requester, body: { medium: string; address: string; id_server?: string }): Promise<{ id_server_unbind_result: UnbindResult }> {
    const address = canonicalAddress(body.medium, body.address);
    return { id_server_unbind_result: await this.unbindEverywhere(requester.userId, body.medium, address, body.id_server) };
  }

  /**
   * POST /account/3pid/bind: the identity server binds the address it validated (sid,
   * client_secret) to the user; its errors are passed on as they are (the spec asks so).
   */
  async bind(requester: Requester, body: { sid: string; client_secret: string; id_server: string; id_access_token: string }): Promise<object> {
    const idServer = this.identityServers.checkTrusted(body.id_server);
    let association: Record<string, unknown>;
    try {
      association = await this.identityServers.bind(idServer, body.id_access_token, { sid: body.sid, client_secret: body.client_secret, mxid: requester.userId });
    } catch (e) {
      if (e instanceof IdentityServerError) throw e.toMatrixError();
      throw e;
    }
    if (association.mxid !== undefined && association.mxid !== requester.userId) {
      throw new MatrixError(502, 'M_UNKNOWN', `The identity server ${idServer} answered with a bind to someone else`);
    }
    const medium = String(association.medium);
    let address = String(association.address);
    try {
      address = canonicalAddress(medium, address);
    } catch {
      // Kept as the identity server wrote it: an unbind sends it back the same way.
    }
    await insertIdServerBind(this.ctx.db, { user_id: requester.userId, medium, address, id_server: idServer });
    return {};
  }

  /** Deactivation, in its transaction: every address leaves the account (and may be added to another). */
  async removeAllIn(trx: DbOrTx, userId: string): Promise<void> {
    await deleteThreepidsOf(trx, userId);
  }

  /** Deactivation, after commit: every bind made through this server is undone; 'success' only when all unbinds were. */
  async unbindAll(userId: string): Promise<UnbindResult> {
    const binds = await selectIdServerBinds(this.ctx.db, userId);
    let result: UnbindResult = 'success';
    for (const b of binds) {
      if (!(await this.unbindOne(userId, b.medium, b.address, b.id_server))) result = 'no-support';
    }
    return result;
  }

  /** Unbinds at `idServer`, or at every identity server this server bound the address at; 'no-support' when there is none or one refused. */
  private async unbindEverywhere(userId: string, medium: string, address: string, idServer: string | undefined): Promise<UnbindResult> {
    const known = (await selectIdServerBinds(this.ctx.db, userId, medium, address)).map((b) => b.id_server);
    const servers = idServer !== undefined ? [idServer] : known;
    if (servers.length === 0) return 'no-support';
    let result: UnbindResult = 'success';
    for (const s of servers) {
      if (!this.ctx.config.identity_server.trusted.includes(s)) {
        result = 'no-support';
        continue;
      }
      if (!(await this.unbindOne(userId, medium, address, s))) result = 'no-support';
    }
    return result;
  }

  private async unbindOne(userId: string, medium: string, address: string, idServer: string): Promise<boolean> {
    const ok = await this.identityServers.unbind(idServer, userId, { medium, address });
    // A refused unbind is forgotten too: the user asked for it, and nothing would retry it.
    await deleteIdServerBind(this.ctx.db, { user_id: userId, medium, address, id_server: idServer });
    if (!ok) this.ctx.logger.info({ idServer, medium }, 'identity server did not unbind a third-party id');
    return ok;
  }
}
