/**
 * The server's Prometheus metrics. Each server owns its registry (never prom-client's global one),
 * so several servers in one process report only their own figures. Counters that the code moves
 * (requests, persisted events) are kept here; everything else is read from its owner when
 * Prometheus scrapes (collect callbacks), so the hot paths pay nothing for it.
 *
 * Names are listed in README.md ("Metrics") and used by docs/grafana-dashboard.json.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { CountingCache } from '../bounded-cache.js';
import type { PoolUsage } from '../db/postgres-driver.js';
import type { DestinationStatus } from '../federation/outbound/destination-queue.js';
import { RouteStatsTable } from './route-stats.js';

/** Where the scrape-time figures come from. */
export interface MetricSources {
  /** /sync and sliding-sync long-polls waiting now. */
  syncWaiters(): number;
  /** This node's federation queues. */
  destinations(): DestinationStatus[];
  /** Names of the leases this node holds. */
  leases(): string[];
  /** The bounded caches that count their lookups, by name. */
  caches(): ReadonlyMap<string, CountingCache<{}, {}>>;
  /** PostgreSQL's connection pool; absent on SQLite. */
  pool?: PoolUsage;
}

const DESTINATION_STATES: DestinationStatus['state'][] = ['up', 'backing_off'];

/** Request durations: from a cached read to a 30 s /sync long-poll. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class HearthMetrics {
  readonly registry = new Registry();
  /** Answered requests by route pattern, method and status, with their durations (route-stats.ts). */
  readonly http = new RouteStatsTable(
    'hearth_http_request_duration_seconds',
    'Time from receiving a request to sending its answer (long-polls included), by route pattern',
    DURATION_BUCKETS,
  );
  /** Committed events by origin, counted here and handed to prom-client when scraped. */
  private readonly persisted = { local: 0, remote: 0 };

  constructor(private readonly serverName: string, sources: MetricSources) {
    const registers = [this.registry];
    // Process figures and event-loop lag, in this registry only. The lag is sampled by a timer
    // every 100 ms rather than prom-client's 10 ms: an idle server then wakes 10 times a second,
    // not 100 (a board's power draw), and each sample still measures the lag to the nanosecond.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });

    const http = this.http;
    new Counter({
      name: 'hearth_http_requests_total',
      help: 'HTTP requests answered, by route pattern, method and status code',
      labelNames: ['method', 'route', 'status'],
      registers,
      collect() {
        this.reset();
        for (const r of http.all()) for (const [status, n] of r.byStatus) this.inc({ method: r.method, route: r.route, status: String(status) }, n);
      },
    });
    this.registry.registerMetric(http as unknown as Metric);
    const persisted = this.persisted;
    new Counter({
      name: 'hearth_events_persisted_total',
      help: 'Room events committed by this node, by origin (made here or received from another server)',
      labelNames: ['origin'],
      registers,
      collect() {
        // Both series are there from the start, so rate() works before the first remote event.
        this.reset();
        this.inc({ origin: 'local' }, persisted.local);
        this.inc({ origin: 'remote' }, persisted.remote);
      },
    });

    new Gauge({
      name: 'hearth_sync_waiters',
      help: 'Sync long-polls waiting for something new',
      registers,
      collect() {
        this.set(sources.syncWaiters());
      },
    });

    new Gauge({
      name: 'hearth_federation_queue_depth',
      help: 'Events and EDUs known to wait for a destination in this node\'s queue (a lower bound while catching up)',
      labelNames: ['destination'],
      registers,
      collect() {
        this.reset();
        for (const d of sources.destinations()) this.set({ destination: d.destination }, d.queueDepth);
      },
    });
    new Gauge({
      name: 'hearth_federation_destination_state',
      help: '1 for the state each destination is in (up or backing_off), 0 for the other',
      labelNames: ['destination', 'state'],
      registers,
      collect() {
        this.reset();
        for (const d of sources.destinations()) {
          for (const state of DESTINATION_STATES) this.set({ destination: d.destination, state }, d.state === state ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'hearth_federation_destinations',
      help: 'Destinations this node keeps a queue for, by state',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = new Map(DESTINATION_STATES.map((s) => [s, 0]));
        for (const d of sources.destinations()) counts.set(d.state, (counts.get(d.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });

    new Gauge({
      name: 'hearth_lease_held',
      help: 'Leases (single-owner roles) this node holds: 1 per lease',
      labelNames: ['lease'],
      registers,
      collect() {
        this.reset();
        for (const lease of sources.leases()) this.set({ lease }, 1);
      },
    });

    new Counter({
      name: 'hearth_cache_lookups_total',
      help: 'Lookups in the bounded in-memory caches, by cache and result (hit or miss)',
      labelNames: ['cache', 'result'],
      registers,
      collect() {
        // The caches count for themselves; the counter is set to their totals.
        this.reset();
        for (const [cache, c] of sources.caches()) {
          this.inc({ cache, result: 'hit' }, c.hits);
          this.inc({ cache, result: 'miss' }, c.misses);
        }
      },
    });
    new Gauge({
      name: 'hearth_cache_entries',
      help: 'Entries held in each bounded cache',
      labelNames: ['cache'],
      registers,
      collect() {
        this.reset();
        for (const [cache, c] of sources.caches()) this.set({ cache }, c.size);
      },
    });
    new Gauge({
      name: 'hearth_cache_capacity',
      help: 'Most entries each bounded cache may hold',
      labelNames: ['cache'],
      registers,
      collect() {
        this.reset();
        for (const [cache, c] of sources.caches()) this.set({ cache }, c.maxSize);
      },
    });

    const pool = sources.pool;
    if (pool) {
      new Gauge({
        name: 'hearth_db_pool_size',
        help: 'Most PostgreSQL connections this node opens (database.pool_size)',
        registers,
        collect() {
          this.set(pool.size);
        },
      });
      new Gauge({
        name: 'hearth_db_pool_in_use',
        help: 'PostgreSQL connections reserved by a query or transaction now',
        registers,
        collect() {
          this.set(pool.inUse);
        },
      });
    }
  }

  /** Counts a committed batch of events by whether their sender is a user of this server. */
  eventsCommitted(events: readonly { pdu: { sender?: unknown } }[]): void {
    let local = 0;
    for (const e of events) {
      const sender = typeof e.pdu.sender === 'string' ? e.pdu.sender : '';
      if (sender.slice(sender.indexOf(':') + 1) === this.serverName) local++;
    }
    this.persisted.local += local;
    this.persisted.remote += events.length - local;
  }

  /** The text Prometheus reads. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
