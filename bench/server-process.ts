// A Hearth server started as its own process for a benchmark, as `npm start` runs it (the same
// allocator setting and young-generation size), with rate limits off and quiet logs.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { BenchClient, freePort } from './client.js';

const ROOT = new URL('../..', import.meta.url).pathname;

export interface ServerProcess {
  proc: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** The data directory (SQLite database, media, keys). */
  dir: string;
  /** Defaults to SQLite in `dir`. */
  databaseUrl?: string;
  /** More flags for node (a CPU profile, GC tracing). */
  nodeArgs?: string[];
  /** More environment (a log level, a config file). */
  env?: Record<string, string>;
  /** Where the server's stdout goes; inherited by default. */
  stdout?: 'inherit' | 'pipe';
  /** Another built checkout whose server to run (compare.ts); this one by default. */
  root?: string;
}

export async function startServerProcess(opts: ServerOptions): Promise<ServerProcess> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['--max-semi-space-size=2', ...(opts.nodeArgs ?? []), join(opts.root ?? ROOT, 'bin/hearth.js'), 'start'], {
    env: {
      ...process.env,
      HEARTH_DATA_DIR: opts.dir,
      HEARTH_LISTEN: `127.0.0.1:${port}`,
      HEARTH_DATABASE_URL: opts.databaseUrl ?? 'hearth.db',
      HEARTH_RATE_LIMITS: 'off',
      // As bin/hearth.js's first line and `npm start` set it.
      MALLOC_MMAP_THRESHOLD_: '131072',
      HEARTH_LOG_LEVEL: 'warn',
      // A benchmark's own config file (HEARTH_BENCH_CONFIG), or none: the defaults.
      HEARTH_CONFIG: process.env.HEARTH_BENCH_CONFIG ?? '',
      ...opts.env,
    },
    stdio: ['ignore', opts.stdout ?? 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const probe = new BenchClient(url, 1);
  try {
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`);
      try {
        if ((await probe.call('GET', '/_matrix/client/versions')).status === 200) break;
      } catch {
        if (i > 400) throw new Error('server did not start');
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await probe.close();
  }
  return {
    proc,
    url,
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}
