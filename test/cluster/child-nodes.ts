import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { freePort } from '../helpers/server.js';

const MAIN = new URL('../../src/cli/main.js', import.meta.url).pathname;

export interface ChildNode {
  url: string;
  port: number;
  proc: ChildProcess;
  dataDir: string;
  /** The node's id, as /health names it (also the lease holder's name). */
  nodeId: string;
}

/**
 * Hearth nodes as child processes (`hearth start`, from the compiled tree) on one PostgreSQL
 * database and one signing key, so a test can kill one with SIGKILL. Resolves once every node
 * answers /ready. Each node's log goes to `node.log` in its data dir. Nodes are added to `nodes`
 * as they are spawned, so the caller can stop them even when a later one fails to start.
 * `dbUrl` may be one URL per node (the same database reached different ways).
 */
export async function spawnNodes(n: number, dbUrl: string | string[], config: Record<string, unknown>, nodes: ChildNode[] = []): Promise<ChildNode[]> {
  const base = mkdtempSync(join(tmpdir(), 'hearth-nodes-'));
  const keyPath = join(base, 'signing.key');
  // The first node migrates the database and writes the shared key; the others start after it.
  for (let i = 0; i < n; i++) {
    const dataDir = join(base, `node${i}`);
    const port = await freePort();
    const file = join(base, `node${i}.yaml`);
    writeFileSync(
      file,
      YAML.stringify({
        listen: `127.0.0.1:${port}`,
        data_dir: dataDir,
        database: { url: typeof dbUrl === 'string' ? dbUrl : dbUrl[i], pool_size: 5 },
        signing_key_path: keyPath,
        registration: 'open',
        registration_shared_secret: 'node-test-secret',
        form_secret: 'node-test-form-secret',
        log_level: process.env.HEARTH_TEST_LOG ?? 'warn',
        ...config,
      }),
    );
    mkdirSync(dataDir, { recursive: true });
    const log = openSync(join(dataDir, 'node.log'), 'w');
    const proc = spawn(process.execPath, ['--input-type=module', '-e', `import { main } from ${JSON.stringify(MAIN)}; process.exitCode = await main(['start', '--config', ${JSON.stringify(file)}]);`], {
      stdio: ['ignore', log, log],
    });
    const url = `http://127.0.0.1:${port}`;
    const node: ChildNode = { url, port, proc, dataDir, nodeId: '' };
    nodes.push(node);
    if (i === 0) await ready(node);
  }
  await Promise.all(nodes.slice(1).map((n) => ready(n)));
  return nodes;
}

async function ready(node: ChildNode, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (node.proc.exitCode !== null) throw new Error(`node on ${node.port} exited (${node.proc.exitCode}); see ${node.dataDir}/node.log`);
    try {
      const res = await fetch(`${node.url}/ready`, { signal: AbortSignal.timeout(5000) });
      const body = (await res.json()) as { node: string };
      if (res.status === 200) {
        node.nodeId = body.node;
        return;
      }
      last = JSON.stringify(body);
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > end) throw new Error(`node on ${node.port} not ready (${last}); see ${node.dataDir}/node.log`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops the nodes still running (SIGTERM, then SIGKILL after a grace period) and removes their files. */
export async function stopChildNodes(nodes: ChildNode[]): Promise<void> {
  await Promise.all(
    nodes.map(async (n) => {
      if (n.proc.exitCode !== null || n.proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => n.proc.once('exit', () => r()));
      n.proc.kill('SIGTERM');
      const t = setTimeout(() => n.proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }),
  );
  // HEARTH_TEST_KEEP_LOGS=1 keeps the folders (and the nodes' logs) to look at after a failure.
  if (nodes[0] && !process.env.HEARTH_TEST_KEEP_LOGS) rmSync(join(nodes[0].dataDir, '..'), { recursive: true, force: true });
}
