/**
 * A first-come, first-served gate for the per-user reads of /sync
 * (memberships, unread counts, one-time and fallback key counts, each read
 * gathered across the syncs that ask together: gathered-reads.ts): at most
 * `width` of them under way at once. A wake-up of many long-polls asks all
 * of them at the same moment. SQLite runs one statement at a time on its one
 * connection, and a crowd of queries waiting for that connection costs more
 * than the queries themselves (each release of the connection wakes every
 * waiting query); so few are let through at a time, in arrival order.
 * PostgreSQL gets as many as its pool has connections.
 */
export class ReadGate {
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(private readonly width: number) {}

  async run<T>(read: () => Promise<T>): Promise<T> {
    if (this.running < this.width) this.running++;
    // The slot is handed over by the read that finishes (running stays counted).
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    try {
      return await read();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.running--;
    }
  }
}
