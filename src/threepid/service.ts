/**
 * The outside services third-party identifiers need: the SMTP server (validation emails) and
 * identity servers (binds, unbinds, lookups and stored invites). Accounts and rooms call them
 * through this service; neither keeps state here, so every node has its own copy.
 */
import type { Context, Lifecycle } from '../context.js';
import { ConfigError } from '../config/validate.js';
import { createOutboundGuard, isCidrList, outboundAllowFromEnv } from '../http/outbound-guard.js';
import { IdentityServers } from './identity-servers.js';
import { Mailer } from './mailer.js';

export class ThreepidService implements Lifecycle {
  /** null without the `email` config. */
  readonly mailer: Mailer | null;
  readonly identityServers: IdentityServers;

  constructor(ctx: Context) {
    this.mailer = ctx.config.email ? new Mailer(ctx.config.email) : null;
    const allow = outboundAllowFromEnv();
    if (!isCidrList(allow)) throw new ConfigError('(environment)', 'HEARTH_OUTBOUND_ALLOW', 'must be comma-separated CIDRs like "10.0.0.0/8"');
    this.identityServers = new IdentityServers({
      config: ctx.config.identity_server,
      guard: createOutboundGuard(allow),
      serverName: ctx.serverName,
      signingKey: ctx.signingKey,
    });
  }

  async stop(): Promise<void> {
    await this.mailer?.close();
    await this.identityServers.close();
  }
}
