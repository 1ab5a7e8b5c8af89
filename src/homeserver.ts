import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AccountsService } from './accounts/service.js';
import { migrations as accountsMigrations } from './accounts/migrations.js';
import { accountsRoutes } from './accounts/routes.js';
import { appserviceRoutes } from './appservice/routes.js';
import { LocalBus, type Bus } from './cluster/bus.js';
import { eventsBetween, headsAndEventsAfter } from './cluster/events-catch-up.js';
import { InvalidationPruner } from './cluster/invalidation-pruner.js';
import { LocalLeases, type Leases } from './cluster/leases.js';
import { migrations as clusterMigrations } from './cluster/migrations.js';
import { newNodeId } from './cluster/node-id.js';
import { NodeRegistry } from './cluster/node-registry.js';
import { PgBus } from './cluster/pg-bus.js';
import { PgLeases } from './cluster/pg-leases.js';
import { ShardOwner } from './cluster/shard-owner.js';
import { SharedRateLimiter } from './cluster/shared-rate-limiter.js';
import type { LoadedConfig } from './config/load.js';
import type { Context, Lifecycle, Services } from './context.js';
import { connectDatabase, type Database } from './db/connect.js';
import { runMigrations, type DomainMigrations } from './db/migrate.js';
import { streamMigrations } from './db/stream-positions.js';
import { DirectoryService } from './directory/service.js';
import { migrations as directoryMigrations } from './directory/migrations.js';
import { directoryRoutes } from './directory/routes.js';
import { E2eeService } from './e2ee/service.js';
import { migrations as federationMigrations } from './federation/migrations.js';
import { registerFederationRoutes } from './federation/router.js';
import { FederationService } from './federation/service.js';
import { migrations as e2eeMigrations } from './e2ee/migrations.js';
import { e2eeRoutes } from './e2ee/routes.js';
import { discoveryRoutes } from './http/discovery-routes.js';
import { healthRoutes } from './http/health-routes.js';
import { MemoryRateLimiter, type RateLimiter } from './http/rate-limit.js';
import { registerRoutes } from './http/router.js';
import { createHttpServer } from './http/server.js';
import { createLogger } from './logger.js';
import { MediaService } from './media/service.js';
import { cachesOf } from './bounded-cache.js';
import { instrumentHttp } from './metrics/http.js';
import { HearthMetrics } from './metrics/metrics.js';
import { metricsRoutes } from './metrics/routes.js';
import { migrations as mediaMigrations } from './media/migrations.js';
import { mediaRoutes } from './media/routes.js';
import { federationMediaRoutes } from './media/federation-routes.js';
import { migrations as reportsMigrations } from './reports/migrations.js';
import { reportRoutes } from './reports/routes.js';
import { serverNoticeRoutes } from './server-notices/routes.js';
import { ServerNotices } from './server-notices/service.js';
import { legacyRoutes } from './legacy/routes.js';
import { openIdUserinfoRoute } from './federation/inbound/openid-userinfo.js';
import { PushService } from './push/service.js';
import { migrations as pushMigrations } from './push/migrations.js';
import { pushRoutes } from './push/routes.js';
import { RelationsService } from './relations/service.js';
import { migrations as relationsMigrations } from './relations/migrations.js';
import { relationsRoutes } from './relations/routes.js';
import { RoomsService } from './rooms/service.js';
import { migrations as roomsMigrations } from './rooms/migrations.js';
import { roomsRoutes } from './rooms/routes.js';
import { SearchService } from './search/service.js';
import { migrations as searchMigrations } from './search/migrations.js';
import { searchRoutes } from './search/routes.js';
import { DelayedEventsService } from './delayed-events/service.js';
import { migrations as delayedEventsMigrations } from './delayed-events/migrations.js';
import { delayedEventsRoutes } from './delayed-events/routes.js';
import { migrations as threadSubscriptionsMigrations } from './thread-subscriptions/migrations.js';
import { threadSubscriptionRoutes } from './thread-subscriptions/routes.js';
import { SlidingSyncService } from './sliding-sync/service.js';
import { migrations as slidingSyncMigrations } from './sliding-sync/migrations.js';
import { slidingSyncRoutes } from './sliding-sync/routes.js';
import { SyncService } from './sync/service.js';
import { ThreepidService } from './threepid/service.js';
import { voipRoutes } from './voip/routes.js';
import { migrations as syncMigrations } from './sync/migrations.js';
import { syncRoutes } from './sync/routes.js';

/** Every domain's migrations, in the order they apply. */
export const ALL_MIGRATIONS: DomainMigrations[] = [
  { domain: 'streams', migrations: streamMigrations },
  { domain: 'accounts', migrations: accountsMigrations },
  { domain: 'rooms', migrations: roomsMigrations },
  { domain: 'sync', migrations: syncMigrations },
  { domain: 'e2ee', migrations: e2eeMigrations },
  { domain: 'push', migrations: pushMigrations },
  { domain: 'directory', migrations: directoryMigrations },
  { domain: 'media', migrations: mediaMigrations },
  { domain: 'federation', migrations: federationMigrations },
  { domain: 'relations', migrations: relationsMigrations },
  { domain: 'search', migrations: searchMigrations },
  { domain: 'reports', migrations: reportsMigrations },
  { domain: 'sliding_sync', migrations: slidingSyncMigrations },
  { domain: 'delayed_events', migrations: delayedEventsMigrations },
  { domain: 'thread_subscriptions', migrations: threadSubscriptionsMigrations },
  { domain: 'cluster', migrations: clusterMigrations },
];

export interface Homeserver {
  ctx: Context;
  app: FastifyInstance;
  /** Starts services and listens; resolves to the base URL. */
  start(): Promise<string>;
  /** Stops accepting requests, lets in-flight ones finish, closes the database. */
  stop(): Promise<void>;
}

export async function openDatabase(loaded: LoadedConfig): Promise<Database> {
  const { config, paths } = loaded;
  return connectDatabase({
    url: paths.database ?? config.database.url,
    sqliteSynchronous: config.database.sqlite_synchronous,
    poolSize: config.database.pool_size,
  });
}

export async function createHomeserver(loaded: LoadedConfig, opts: { logger?: Logger } = {}): Promise<Homeserver> {
  const { config } = loaded;
  const logger = opts.logger ?? createLogger(config.log_level);
  const database = await openDatabase(loaded);
  const ran = await runMigrations(database.db, database.dialect, ALL_MIGRATIONS);
  if (ran.length > 0) logger.info({ migrations: ran }, 'database migrated');
  const nodeId = newNodeId();
  // On PostgreSQL other nodes may share the database: the bus must hear them (CLUSTER.md 3).
  const bus: Bus =
    database.dialect === 'postgres'
      ? new PgBus({ url: config.database.url, db: database.db, nodeId, logger, now: () => Date.now(), headsAndEventsAfter: (a, n) => headsAndEventsAfter(database.db, a, n), eventsBetween: (a, b, n) => eventsBetween(database.db, a, b, n) })
      : new LocalBus();
  // Leases are renewed, and nodes beat, every third of the lease's time to live (CLUSTER.md 5: 15 s, 5 s).
  const ttlMs = config.cluster.lease_ttl_ms;
  const leases: Leases =
    database.dialect === 'postgres'
      ? new PgLeases({ db: database.db, dialect: database.dialect, nodeId, logger, ttlMs, renewMs: ttlMs / 3, selfFenceMs: (ttlMs * 2) / 3 })
      : new LocalLeases();
  const nodes = new NodeRegistry({ db: database.db, dialect: database.dialect, nodeId, logger, everyMs: ttlMs / 3, silentAfterMs: ttlMs });
  // Nodes sharing a database share the federation destinations out by shard (on SQLite the one node sends to all).
  const federationShards =
    database.dialect === 'postgres'
      ? new ShardOwner({ name: 'federation.shard', leases, nodes, logger, everyMs: ttlMs / 3, handoverMs: ttlMs / 3 })
      : null;
  // Only the PostgreSQL bus writes the invalidation stream.
  const pruner = database.dialect === 'postgres' ? new InvalidationPruner({ db: database.db, leases, logger, now: () => Date.now() }) : null;
  // Nodes sharing a database share the buckets, or each would grant the whole allowance.
  const limits = {
    login: config.rate_limits.login,
    registration: config.rate_limits.registration,
    message: config.rate_limits.message,
    delayed_events: config.rate_limits.delayed_events,
  };
  const sharedLimiter = database.dialect === 'postgres' ? new SharedRateLimiter({ db: database.db, leases, logger, limits, enabled: config.rate_limits.enabled }) : null;
  const rateLimiter: RateLimiter = sharedLimiter ?? new MemoryRateLimiter(limits, config.rate_limits.enabled);

  const ctx = {
    config,
    serverName: config.server_name,
    signingKey: loaded.signingKey,
    db: database.db,
    dialect: database.dialect,
    bus,
    leases,
    logger,
    rateLimiter,
    services: {} as Services,
    now: () => Date.now(),
  } satisfies Context;
  ctx.services.threepid = new ThreepidService(ctx);
  ctx.services.accounts = new AccountsService(ctx);
  ctx.services.rooms = new RoomsService(ctx);
  ctx.services.sync = new SyncService(ctx);
  ctx.services.slidingSync = new SlidingSyncService(ctx);
  ctx.services.delayedEvents = new DelayedEventsService(ctx);
  ctx.services.e2ee = new E2eeService(ctx);
  ctx.services.push = new PushService(ctx);
  ctx.services.directory = new DirectoryService(ctx);
  ctx.services.relations = new RelationsService(ctx);
  ctx.services.search = new SearchService(ctx);
  ctx.services.serverNotices = new ServerNotices(ctx);
  const roomsCore = ctx.services.rooms.core;
  ctx.services.federation = new FederationService(ctx, { core: roomsCore, localKeys: roomsCore.keyRing });
  ctx.services.media = new MediaService({
    db: ctx.db,
    dialect: ctx.dialect,
    config,
    serverName: config.server_name,
    rooms: ctx.services.rooms,
    federation: config.federation.enabled ? ctx.services.federation.client : undefined,
    dataDir: loaded.paths.dataDir,
    logger,
    now: () => ctx.now(),
  });
  // Received events are checked with remote servers' keys, fetched as needed.
  if (config.federation.enabled) roomsCore.useKeyRing(ctx.services.federation.keyRing);
  if (federationShards) ctx.services.federation.sender.useShards(federationShards);

  const metrics = config.metrics.enabled
    ? new HearthMetrics(config.server_name, {
        syncWaiters: () => ctx.services.sync.notifier.waiting,
        destinations: () => ctx.services.federation.sender.statuses(),
        leases: () => ctx.leases.heldNames(),
        caches: () => cachesOf(ctx),
        pool: database.pool,
      })
    : null;
  const app = createHttpServer({
    logger,
    bodyLimit: config.max_request_bytes,
    https: loaded.tls,
    instrument: metrics ? (a) => instrumentHttp(a, metrics) : undefined,
  });
  if (metrics) ctx.services.rooms.core.pipeline.onCommitted((events) => metrics.eventsCommitted(events));
  registerRoutes(app, ctx, [
    ...(metrics ? metricsRoutes(config.metrics, metrics) : []),
    ...discoveryRoutes(ctx),
    ...healthRoutes(ctx, nodes, ALL_MIGRATIONS),
    ...accountsRoutes(ctx),
    ...roomsRoutes(ctx),
    ...syncRoutes(ctx),
    ...slidingSyncRoutes(ctx),
    ...delayedEventsRoutes(ctx),
    ...threadSubscriptionRoutes(ctx),
    ...voipRoutes(ctx),
    ...e2eeRoutes(ctx),
    ...pushRoutes(ctx),
    ...directoryRoutes(ctx),
    ...mediaRoutes(ctx),
    ...relationsRoutes(ctx),
    ...searchRoutes(ctx),
    ...reportRoutes(ctx),
    ...serverNoticeRoutes(ctx, ctx.services.serverNotices),
    ...legacyRoutes(ctx),
    ...appserviceRoutes(ctx),
  ]);
  if (config.federation.enabled) {
    const openId = openIdUserinfoRoute((token) => ctx.services.accounts.openIdTokenUser(token));
    registerFederationRoutes(app, config.server_name, ctx.services.federation.keyRing, [
      ...ctx.services.federation.routes(),
      ...federationMediaRoutes(ctx.services.media),
      openId,
    ]);
  }

  const services = Object.values(ctx.services) as Lifecycle[];
  let stopped = false;
  return {
    ctx,
    app,
    async start() {
      await ctx.bus.start();
      await ctx.leases.start();
      for (const s of services) await s.start?.();
      const m = /^(.*):(\d+)$/.exec(config.listen)!;
      const host = m[1].replace(/^\[(.*)\]$/, '$1');
      await app.listen({ host, port: Number(m[2]) });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : Number(m[2]);
      const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
      const url = `${loaded.tls ? 'https' : 'http'}://${shownHost}:${port}`;
      // A node is known to the others by where it serves (by host name when it listens on every
      // address, so that two boxes differ): a restarted node is given its shards back.
      await nodes.start(host === '0.0.0.0' || host === '::' ? `${loaded.tls ? 'https' : 'http'}://${hostname()}:${port}` : url);
      // After the node's row is written: the shards a node is given depend on who is alive.
      await federationShards?.start();
      pruner?.start();
      sharedLimiter?.start();
      logger.info({ url, server_name: config.server_name, database: database.dialect, node: nodeId }, 'hearth listening');
      return url;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // Long-polls are answered at once; requests in flight get a grace period,
      // then connections that never sent a request (or hang) are cut.
      await ctx.services.sync.beforeClose();
      const force = setTimeout(() => app.server.closeAllConnections(), 3000);
      force.unref();
      setImmediate(() => app.server.closeIdleConnections());
      await app.close();
      clearTimeout(force);
      for (const s of [...services].reverse()) await s.stop?.();
      await federationShards?.stop();
      pruner?.stop();
      sharedLimiter?.stop();
      await nodes.stop();
      await ctx.leases.close();
      await ctx.bus.close();
      await database.close();
    },
  };
}
