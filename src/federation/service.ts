/**
 * The federation domain: this server's keys and the notary, remote servers' keys
 * (FederationKeyRing, which the rooms core checks received events with), X-Matrix request
 * authentication, server discovery and the outbound client, the outbound sender (one queue per
 * destination), membership over federation (joining rooms held elsewhere, inviting users of other
 * servers, and the resident server's make/send join and leave; joins with partial state and their
 * resync), and the inbound `/send` and read
 * endpoints with gaps filled from the sender, typing and receipt EDUs both ways, and server ACLs;
 * the queries (aliases, profiles, the room directory, device lists and keys) both ways, and the
 * device-list and to-device EDUs both ways.
 */
import type { Context } from '../context.js';
import { serverNameOf } from '../core/ids.js';
import { createOutboundGuard, outboundAllowFromEnv } from '../http/outbound-guard.js';
import type { StaticKeyRing } from '../rooms/inbound/key-ring.js';
import type { RoomsCore } from '../rooms/room-core.js';
import { forbidden } from '../http/errors.js';
import { ServerAcls } from './acl.js';
import { FederationClient } from './client.js';
import { ServerDiscovery } from './discovery.js';
import { backfillRoute } from './inbound/backfill.js';
import { timestampToEventRoute } from './inbound/timestamp-to-event.js';
import { eventAuthRoute } from './inbound/event-auth.js';
import { getEventRoute } from './inbound/event.js';
import { sendTransactionRoute } from './inbound/send.js';
import { serverKeyRoutes } from './inbound/server-keys.js';
import { stateRoutes } from './inbound/state.js';
import { hearthVersion } from '../version.js';
import { versionRoute } from './inbound/version.js';
import { getMissingEventsRoute } from './inbound/get-missing-events.js';
import { inviteRoute } from './inbound/invite.js';
import { thirdPartyInviteRoutes } from './inbound/third-party-invite.js';
import { membershipRoutes } from './inbound/membership.js';
import { PartialStateResync } from './membership/partial-state.js';
import { RemoteMembership } from './membership/remote.js';
import { signByPolicyServer } from './policy/policy-signer.js';
import { EduProducer } from './outbound/edus.js';
import { DeviceListEduProducer } from './outbound/device-list-edus.js';
import { PresenceEduProducer } from './outbound/presence-edus.js';
import { publicRoomsRoutes } from './inbound/public-rooms.js';
import { queryRoutes } from './inbound/query.js';
import { hierarchyRoute } from './inbound/hierarchy.js';
import { federationHierarchy } from '../directory/hierarchy.js';
import { userKeysRoutes } from './inbound/user-keys.js';
import { FederationQueries } from './queries.js';
import { readStreamPositions } from '../db/stream-positions.js';
import { FederationSender } from './outbound/sender.js';
import { StoredEduPruner } from './outbound/stored-edu-pruner.js';
import { ReceivedTxnPruner } from './received-txn-pruner.js';
import type { EduSinks } from './inbound/edus.js';
import { FederationKeyRing } from './keys/federation-key-ring.js';
import { KeyNotary } from './keys/notary.js';
import { OwnServerKeys } from './keys/own-keys.js';
import { RoomReads } from './room-reads.js';
import type { FederationRoute } from './router.js';

/** Endpoints refused to a server the room's ACL denies (spec: server-server API, "Server Access Control Lists"); `/send` checks per PDU. */
const ACL_PROTECTED = [
  '/_matrix/federation/v1/make_join/',
  '/_matrix/federation/v1/make_leave/',
  '/_matrix/federation/v2/send_join/',
  '/_matrix/federation/v2/send_leave/',
  '/_matrix/federation/v2/invite/',
  '/_matrix/federation/v1/make_knock/',
  '/_matrix/federation/v1/send_knock/',
  '/_matrix/federation/v1/state/',
  '/_matrix/federation/v1/state_ids/',
  '/_matrix/federation/v1/backfill/',
  '/_matrix/federation/v1/event_auth/',
  '/_matrix/federation/v1/get_missing_events/',
];

export class FederationService {
  readonly discovery: ServerDiscovery;
  readonly client: FederationClient;
  readonly keyRing: FederationKeyRing;
  readonly ownKeys: OwnServerKeys;
  readonly notary: KeyNotary;
  readonly sender: FederationSender;
  /** Bounds the stored outbound EDUs of servers that stay away. */
  readonly storedEduPruner: StoredEduPruner;
  /** Bounds the answers kept for inbound transactions. */
  readonly receivedTxnPruner: ReceivedTxnPruner;
  readonly acls: ServerAcls;
  private readonly edus: EduProducer;
  readonly deviceListEdus: DeviceListEduProducer;
  private readonly presenceEdus: PresenceEduProducer;
  /** Alias, profile and room directory queries to other servers, for this server's clients. */
  readonly queries: FederationQueries;
  private readonly reads: RoomReads;
  /** Fills in the state of rooms joined with partial state. */
  readonly partialState: PartialStateResync;
  private readonly version = hearthVersion();

  constructor(
    private readonly ctx: Pick<Context, 'config' | 'serverName' | 'signingKey' | 'db' | 'bus' | 'leases' | 'logger' | 'now' | 'services'>,
    private readonly rooms: { core: RoomsCore; localKeys: StaticKeyRing },
  ) {
    const cfg = ctx.config.federation;
    const guard = createOutboundGuard(outboundAllowFromEnv());
    const now = () => ctx.now();
    this.discovery = new ServerDiscovery({ resolveMap: cfg.resolve, guard, verifyTls: cfg.verify_tls, now });
    this.client = new FederationClient({ serverName: ctx.serverName, signingKey: ctx.signingKey, discovery: this.discovery, guard, verifyTls: cfg.verify_tls, now, userAgent: `Hearth/${this.version}` });
    this.keyRing = new FederationKeyRing({
      db: ctx.db,
      local: rooms.localKeys,
      localServer: ctx.serverName,
      client: this.client,
      notaries: cfg.trusted_key_servers,
      logger: ctx.logger,
      now,
    });
    this.ownKeys = new OwnServerKeys(ctx.serverName, ctx.signingKey, cfg.old_verify_keys, now);
    this.notary = new KeyNotary({ db: ctx.db, serverName: ctx.serverName, signingKey: ctx.signingKey, own: this.ownKeys, keyRing: this.keyRing, now });
    this.reads = new RoomReads(rooms.core);
    this.acls = new ServerAcls(rooms.core);
    this.sender = new FederationSender({ ...ctx, now, core: rooms.core, reads: this.reads, client: this.client });
    this.storedEduPruner = new StoredEduPruner({ db: ctx.db, leases: ctx.leases, logger: ctx.logger, now, maxAgeMs: cfg.stored_edu_max_age_ms });
    this.receivedTxnPruner = new ReceivedTxnPruner({ db: ctx.db, leases: ctx.leases, logger: ctx.logger, now });
    this.edus = new EduProducer({
      bus: ctx.bus,
      serverName: ctx.serverName,
      sender: this.sender,
      logger: ctx.logger,
      sources: {
        typists: (roomId) => ctx.services.sync.typing.changedSince([roomId], null).get(roomId) ?? [],
        receipts: async (roomId, from, to) => (await ctx.services.sync.receipts.changes([roomId], from, to, '')).get(roomId),
      },
    });
    this.deviceListEdus = new DeviceListEduProducer({
      bus: ctx.bus,
      serverName: ctx.serverName,
      sender: this.sender,
      logger: ctx.logger,
      sources: {
        head: async () => (await readStreamPositions(ctx.db)).device_lists,
        edusBetween: (from, to, limit) => ctx.services.e2ee.localLists.edusBetween(from, to, limit),
        usersSharingRooms: (userId) => ctx.services.rooms.getUsersSharingRooms(userId),
      },
    });
    this.presenceEdus = new PresenceEduProducer({
      bus: ctx.bus,
      serverName: ctx.serverName,
      sender: this.sender,
      logger: ctx.logger,
      sources: {
        content: async (userId) => {
          const presence = ctx.services.sync.presence;
          return presence.content(await presence.get(userId));
        },
        usersSharingRooms: (userId) => ctx.services.rooms.getUsersSharingRooms(userId),
      },
    });
    this.queries = new FederationQueries(this.client);
    this.partialState = new PartialStateResync({ core: rooms.core, client: this.client, leases: ctx.leases, serverName: ctx.serverName, logger: ctx.logger });
    if (cfg.enabled) {
      rooms.core.remote = new RemoteMembership({
        core: rooms.core,
        client: this.client,
        serverName: ctx.serverName,
        signingKey: ctx.signingKey,
        logger: ctx.logger,
        now,
        joinedWithPartialState: (roomId) => this.partialState.schedule(roomId),
      });
      rooms.core.pipeline.policySigner = (policy, pdu, version) => signByPolicyServer(this.client, ctx.serverName, policy, pdu, version);
    }
  }

  async start(): Promise<void> {
    if (!this.ctx.config.federation.enabled) return;
    await this.sender.start();
    this.storedEduPruner.start();
    this.receivedTxnPruner.start();
    await this.partialState.start();
    this.edus.start();
    await this.deviceListEdus.start();
    if (this.ctx.config.presence_enabled) this.presenceEdus.start();
  }

  /** Where typing and receipts of remote users go: the sync domain's trackers. */
  private eduSinks(): EduSinks {
    const sync = () => this.ctx.services.sync;
    return {
      setTyping: (roomId, userId, typing, timeoutMs) => sync().typing.set(roomId, userId, typing, timeoutMs),
      setReceipt: (r) => sync().receipts.set({ ...r, type: 'm.read' }),
      deviceListUpdate: (origin, content) => this.ctx.services.e2ee.remoteLists.onDeviceListUpdate(origin, content),
      signingKeyUpdate: (origin, content) => this.ctx.services.e2ee.remoteLists.onSigningKeyUpdate(origin, content),
      directToDevice: (origin, content) => this.ctx.services.e2ee.receiveToDevice(origin, content),
      presence: async (userId, presence, statusMsg, lastActiveAgo) => {
        const sharing = await this.ctx.services.rooms.getUsersSharingRooms(userId);
        if (![...sharing].some((u) => serverNameOf(u) === this.ctx.serverName)) return;
        await sync().presence.setRemote(userId, presence, statusMsg, lastActiveAgo);
      },
    };
  }

  /**
   * Every route. A request from a server whose queue is backed off wakes that queue; on the
   * endpoints the spec lists (ACL_PROTECTED), a server the room's ACL denies is refused.
   */
  routes(): FederationRoute[] {
    return this.ownRoutes().map((r) => {
      if (r.auth === 'none') return r;
      const protectedByAcl = ACL_PROTECTED.some((p) => r.url.startsWith(p));
      return {
        ...r,
        handler: async (req, reply) => {
          this.sender.contacted(req.origin);
          if (protectedByAcl && !(await this.acls.allows(req.origin, req.params.roomId as string))) {
            throw forbidden('Your server is denied by the room’s server ACL');
          }
          return r.handler(req, reply);
        },
      };
    });
  }

  private ownRoutes(): FederationRoute[] {
    const now = () => this.ctx.now();
    return [
      ...serverKeyRoutes(this.ownKeys, this.notary),
      versionRoute(this.version),
      sendTransactionRoute({ db: this.ctx.db, core: this.rooms.core, client: this.client, acls: this.acls, eduSinks: this.eduSinks(), logger: this.ctx.logger, now }),
      getMissingEventsRoute(this.reads),
      getEventRoute(this.reads, this.ctx.serverName, now),
      ...stateRoutes(this.reads),
      eventAuthRoute(this.reads),
      backfillRoute(this.reads, this.ctx.serverName, now),
      timestampToEventRoute(this.rooms.core, this.reads),
      inviteRoute({
        core: this.rooms.core,
        keyRing: this.keyRing,
        serverName: this.ctx.serverName,
        signingKey: this.ctx.signingKey,
        userExists: (userId) => this.ctx.services.accounts.userExists(userId),
        blocksInvites: (userId) => this.ctx.services.sync.accountData.blocksInvites(userId),
      }),
      ...membershipRoutes({ core: this.rooms.core, sender: this.sender, reads: this.reads, serverName: this.ctx.serverName, now }),
      ...thirdPartyInviteRoutes({
        serverName: this.ctx.serverName,
        client: this.client,
        logger: this.ctx.logger,
        accept: (roomId, sender, signed) => this.ctx.services.rooms.acceptThirdPartyInvite(roomId, sender, signed),
      }),
      ...queryRoutes({
        serverName: this.ctx.serverName,
        resolveAlias: (alias) => this.ctx.services.directory.resolveAlias(alias),
        profile: (userId) => this.ctx.services.accounts.profiles.getAll(userId),
      }),
      ...publicRoomsRoutes((q) => this.ctx.services.directory.listPublicRooms(q)),
      hierarchyRoute((origin, roomId, suggestedOnly) => federationHierarchy(this.ctx as Context, origin, roomId, suggestedOnly)),
      ...userKeysRoutes({
        serverName: this.ctx.serverName,
        userExists: (userId) => this.ctx.services.accounts.userExists(userId),
        userDevices: (userId) => this.ctx.services.e2ee.localLists.userDevices(userId),
        queryKeys: (wanted) => this.ctx.services.e2ee.queryKeysForServer(wanted),
        claimKeys: (wanted) => this.ctx.services.e2ee.claimKeysForServer(wanted),
      }),
    ];
  }

  async stop(): Promise<void> {
    await this.partialState.stop();
    this.edus.stop();
    await this.deviceListEdus.stop();
    this.presenceEdus.stop();
    this.storedEduPruner.stop();
    this.receivedTxnPruner.stop();
    await this.sender.stop();
    await this.client.close();
    await this.discovery.close();
  }
}
