import type { Logger } from 'pino';
import type { Db, Dialect } from '../db/schema.js';
import { deleteNode, deleteSilentNodes, selectLiveNodes, upsertHeartbeat } from './nodes-table.js';

export interface LiveNode {
  nodeId: string;
  address: string | null;
  silentMs: number;
}

/** A node that has not beaten for this long is taken for gone (by default). */
export const NODE_SILENT_AFTER_MS = 15_000;
const FORGET_AFTER_MS = 24 * 3600_000;

/**
 * This node's row in `cluster_nodes`: written at start, every few seconds,
 * and deleted on a clean stop, so every node can see which others are alive
 * (how single-owner work is shared out, CLUSTER.md 5). A successful beat is
 * also the proof that the database takes writes, which /ready reports.
 */
export class NodeRegistry {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedTs = Date.now();
  /** Where this node serves clients, once listening. */
  private address: string | null = null;
  /** performance.now() of the last successful beat. */
  lastBeat = -Infinity;

  constructor(
    private readonly opts: { db: Db; dialect: Dialect; nodeId: string; logger: Logger; everyMs?: number; silentAfterMs?: number },
  ) {}

  get nodeId(): string {
    return this.opts.nodeId;
  }

  async start(address: string | null): Promise<void> {
    this.address = address;
    await this.beat();
    await deleteSilentNodes(this.opts.db, this.opts.dialect, FORGET_AFTER_MS);
    this.timer = setInterval(() => void this.beat().catch((err) => this.opts.logger.warn({ err }, 'node heartbeat failed')), this.opts.everyMs ?? 5000);
    this.timer.unref();
  }

  async beat(): Promise<void> {
    await upsertHeartbeat(this.opts.db, this.opts.dialect, { node_id: this.opts.nodeId, address: this.address, started_ts: this.startedTs });
    this.lastBeat = performance.now();
  }

  async live(): Promise<LiveNode[]> {
    const rows = await selectLiveNodes(this.opts.db, this.opts.dialect, this.opts.silentAfterMs ?? NODE_SILENT_AFTER_MS);
    return rows.map((r) => ({ nodeId: r.node_id, address: r.address, silentMs: Number(r.silent_ms) }));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await deleteNode(this.opts.db, this.opts.nodeId).catch((err) => this.opts.logger.warn({ err }, 'node row not removed'));
  }
}
