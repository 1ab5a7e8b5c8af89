import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, TEST_DB, type ApiResponse, type TestServer, type TestUser } from '../helpers/server.js';

/** Cluster nodes share one PostgreSQL database; SQLite is one process's embedded file. */
export const NEEDS_PG = TEST_DB !== 'postgres' ? 'needs PostgreSQL: cluster nodes share one database, SQLite has a single process' : false;

/**
 * `n` Hearth servers on one database and one signing key, as cluster nodes are (CLUSTER.md 2),
 * with `config` merged into each one's. Stop with stopNodes.
 */
export async function startNodes(n: number, opts: { config?: Record<string, unknown>; serverName?: string } = {}): Promise<TestServer[]> {
  const first = await startTestServer(opts);
  const url = first.hs.ctx.config.database.url;
  const nodes = [first];
  for (let i = 1; i < n; i++) {
    const shared = { database: { url, sqlite_synchronous: 'NORMAL', pool_size: 5 }, signing_key_path: join(first.dataDir, 'signing.key') };
    nodes.push(await startTestServer({ ...opts, config: { ...opts.config, ...shared } }));
  }
  return nodes;
}

/** Stops the nodes, the first (which owns the database) last. */
export async function stopNodes(nodes: TestServer[]): Promise<void> {
  for (const s of [...nodes].reverse()) await s?.stop();
}

/** Waits until the node has a long-poll waiting (so a wake-up, not the first computation, answers it). */
export async function untilWaiting(node: TestServer, count = 1, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (node.hs.ctx.services.sync.notifier.waiting < count) {
    if (Date.now() > end) throw new Error('no long-poll waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Follows a long-poll until a response satisfies `pred`: a long-poll may
 * also wake for other news (presence, another node's missed announcement),
 * and answers with it.
 */
export async function syncUntil(node: TestServer, user: TestUser, first: Promise<ApiResponse>, pred: (body: any) => boolean, timeoutMs = 20000): Promise<ApiResponse> {
  const end = Date.now() + timeoutMs;
  let res = await first;
  for (;;) {
    if (res.status !== 200) throw new Error(`sync failed: ${res.status} ${JSON.stringify(res.body)}`);
    if (pred(res.body)) return res;
    const left = end - Date.now();
    if (left <= 0) throw new Error('the awaited sync answer did not come');
    res = await node.request('GET', `/_matrix/client/v3/sync?timeout=${left}&since=${encodeURIComponent(res.body.next_batch)}`, { token: user.accessToken });
  }
}

/**
 * Appends one run's figures for a fault (a JSON line) to the file named by HEARTH_FAULT_FIGURES,
 * which scripts/fault-report.mjs sets to collect them; without it, nothing is written.
 */
export function recordFigures(fault: string, figures: Record<string, number>): void {
  const file = process.env.HEARTH_FAULT_FIGURES;
  if (file) appendFileSync(file, JSON.stringify({ fault, ...figures }) + '\n');
}
