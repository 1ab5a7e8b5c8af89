/**
 * Serialises work per room: jobs of one room run one batch at a time, in
 * arrival order, while different rooms proceed in parallel. Jobs that arrive
 * while a batch runs are taken together as the next batch, so a busy room
 * pays for one transaction per batch rather than per event.
 */
export class RoomQueue<J> {
  private readonly queues = new Map<string, J[]>();
  private readonly idle = new Set<() => void>();

  constructor(
    private readonly run: (roomId: string, jobs: J[]) => Promise<void>,
    private readonly maxBatch = 200,
  ) {}

  push(roomId: string, job: J): void {
    const q = this.queues.get(roomId);
    if (q) {
      q.push(job);
      return;
    }
    this.queues.set(roomId, [job]);
    void this.drain(roomId);
  }

  /** Resolves once every queued job has run. */
  async drained(): Promise<void> {
    while (this.queues.size > 0) await new Promise<void>((resolve) => this.idle.add(resolve));
  }

  private async drain(roomId: string): Promise<void> {
    const q = this.queues.get(roomId)!;
    while (q.length > 0) {
      const batch = q.splice(0, this.maxBatch);
      try {
        await this.run(roomId, batch);
      } catch {
        // `run` settles its own jobs; nothing may stop the queue.
      }
    }
    this.queues.delete(roomId);
    if (this.queues.size === 0) {
      for (const fn of this.idle) fn();
      this.idle.clear();
    }
  }
}
