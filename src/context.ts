import type { Logger } from 'pino';
import type { Bus } from './cluster/bus.js';
import type { Leases } from './cluster/leases.js';
import type { HearthConfig } from './config/schema.js';
import type { SigningKey } from './core/signing.js';
import type { Db, Dialect } from './db/schema.js';
import type { RateLimiter } from './http/rate-limit.js';
import type { AccountsService } from './accounts/service.js';
import type { RoomsService } from './rooms/service.js';
import type { SyncService } from './sync/service.js';
import type { E2eeService } from './e2ee/service.js';
import type { PushService } from './push/service.js';
import type { DirectoryService } from './directory/service.js';
import type { MediaService } from './media/service.js';
import type { FederationService } from './federation/service.js';
import type { RelationsService } from './relations/service.js';
import type { SearchService } from './search/service.js';
import type { SlidingSyncService } from './sliding-sync/service.js';
import type { DelayedEventsService } from './delayed-events/service.js';
import type { ServerNotices } from './server-notices/service.js';
import type { ThreepidService } from './threepid/service.js';

/**
 * What every domain is handed: configuration, the database, the bus, and the
 * other domains' services (a domain calls another through its service, never
 * through its store).
 */
export interface Context {
  config: HearthConfig;
  serverName: string;
  signingKey: SigningKey;
  db: Db;
  dialect: Dialect;
  bus: Bus;
  leases: Leases;
  logger: Logger;
  rateLimiter: RateLimiter;
  services: Services;
  /** Wall clock in ms; one place to fake it in tests. */
  now(): number;
}

export interface Services {
  accounts: AccountsService;
  rooms: RoomsService;
  sync: SyncService;
  e2ee: E2eeService;
  push: PushService;
  directory: DirectoryService;
  media: MediaService;
  federation: FederationService;
  relations: RelationsService;
  search: SearchService;
  slidingSync: SlidingSyncService;
  delayedEvents: DelayedEventsService;
  threepid: ThreepidService;
  serverNotices: ServerNotices;
}

/** Optional lifecycle hooks a service may have. */
export interface Lifecycle {
  start?(): Promise<void>;
  stop?(): Promise<void>;
}
