/**
 * Answered requests of one method on one route pattern: counts by status and a histogram of
 * durations, kept as plain numbers. A request adds to them in a few array operations; prom-client
 * would check and hash the labels of both series on every request, which a send pays for.
 * They are handed to Prometheus when it scrapes (`RouteStatsTable`).
 */
export class RouteStats {
  readonly byStatus = new Map<number, number>();
  /** Requests no longer than each bound (not yet cumulative); the last slot counts the rest. */
  readonly buckets: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly method: string,
    readonly route: string,
    private readonly bounds: readonly number[],
  ) {
    this.buckets = new Float64Array(bounds.length + 1);
  }

  answered(status: number, seconds: number): void {
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]!) i++;
    this.buckets[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/** One value of a metric as prom-client's registry prints it. */
interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/**
 * Every route's `RouteStats`, and the request-duration histogram built from them at scrape time:
 * an object prom-client's registry reads as it reads its own metrics (name, help, type, get()).
 */
export class RouteStatsTable {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly stats = new Map<string, RouteStats>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  /** The stats of `method` on `route`, made on first use. */
  of(method: string, route: string): RouteStats {
    const key = `${method} ${route}`;
    let s = this.stats.get(key);
    if (s === undefined) this.stats.set(key, (s = new RouteStats(method, route, this.bounds)));
    return s;
  }

  all(): Iterable<RouteStats> {
    return this.stats.values();
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const s of this.stats.values()) {
      const labels = { method: s.method, route: s.route };
      let cumulative = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += s.buckets[i]!;
        values.push({ labels: { ...labels, le: i < this.bounds.length ? this.bounds[i]! : '+Inf' }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
