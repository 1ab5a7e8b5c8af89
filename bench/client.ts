import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { Pool } from 'undici';

/** A keep-alive HTTP client for benchmarks, like a real Matrix client holds. */
export class BenchClient {
  private readonly pool: Pool;
  constructor(readonly baseUrl: string, connections = 16) {
    this.pool = new Pool(baseUrl, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  }

  async call<T = any>(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.pool.request({ method, path, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.body.text();
    return { status: res.statusCode, body: (text ? JSON.parse(text) : undefined) as T };
  }

  async ok<T = any>(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown, token?: string): Promise<T> {
    const r = await this.call<T>(method, path, body, token);
    if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /** Creates a user through shared-secret registration, as deployment tools do. */
  async registerUser(name: string, secret: string): Promise<{ userId: string; token: string }> {
    const { nonce } = await this.ok<{ nonce: string }>('GET', '/_synapse/admin/v1/register');
    const password = `bench-${name}-pw`;
    const mac = createHmac('sha1', secret).update(`${nonce}\0${name}\0${password}\0notadmin`).digest('hex');
    const r = await this.ok<{ user_id: string; access_token: string }>('POST', '/_synapse/admin/v1/register', {
      nonce, username: name, password, admin: false, mac,
    });
    return { userId: r.user_id, token: r.access_token };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** A free TCP port on the loopback address, for a server the benchmark starts. */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A process's resident memory in MB. */
export function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return kb / 1024;
}

/** A process's user+system CPU time in ms (time blocked in fsync is not CPU). */
export function cpuMs(pid: number): number {
  return statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** User+system CPU in ms from a /proc stat line (its command name may hold spaces and parentheses). */
function statCpuMs(stat: string): number {
  const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

/** A process's CPU time in ms, its JavaScript thread apart from all its other threads. */
export interface ThreadCpu {
  /** The thread that runs JavaScript (its id is the process id). */
  main: number;
  /** V8's helpers (optimising compiler, concurrent garbage collection) and libuv's pool. */
  other: number;
}

export function threadCpuMs(pid: number): ThreadCpu {
  const out: ThreadCpu = { main: 0, other: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    if (tid === String(pid)) out.main += statCpuMs(stat);
    else out.other += statCpuMs(stat);
  }
  return out;
}
