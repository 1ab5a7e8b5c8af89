/**
 * A PostgreSQL cluster run by Patroni for failover tests (CLUSTER.md 10, tier 2): one etcd
 * member, `members` PostgreSQL instances each under its own Patroni, and optionally haproxy
 * routing one port to whichever instance Patroni's REST API calls primary, all on loopback
 * with free ports and in one temporary folder. The Patroni settings that decide failover
 * (ttl, loop_wait, synchronous mode, ...) are read from docs/cluster/patroni.yml, so the test
 * exercises the documented configuration rather than a copy of it.
 *
 * PostgreSQL refuses to run as root: when the test runs as root, Patroni (and the PostgreSQL it
 * starts) runs as the `postgres` user, which owns the temporary folder.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { freePort } from '../helpers/server.js';

const DOCS_PATRONI = new URL('../../../docs/cluster/patroni.yml', import.meta.url).pathname;
const SCOPE = 'hearth-test';

export interface Member {
  name: string;
  pgPort: number;
  restPort: number;
  dataDir: string;
  proc: ChildProcess;
}

/** What Patroni's REST API says of one member (GET /cluster). */
export interface MemberState {
  name: string;
  role: string;
  state: string;
  port: number;
  timeline?: number;
}

export interface PatroniCluster {
  members: Member[];
  /** postgres:// URL listing every member, for a client that picks the primary itself. */
  multiHostUrl(database: string): string;
  /** postgres:// URL through haproxy, which forwards to the member Patroni calls primary; null without haproxy. */
  haproxyUrl(database: string): string | null;
  /** The members as Patroni reports them, asked of any member that answers. */
  state(): Promise<MemberState[]>;
  /** SIGKILLs the postmaster of the member `name` (its backends exit when they notice). */
  killPostgres(name: string): void;
  stop(): Promise<void>;
}

/** Why a Patroni cluster cannot be started here, or false. */
export function patroniUnavailable(): string | false {
  if (process.platform !== 'linux') return 'needs Linux';
  for (const bin of ['etcd', 'patroni']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `needs \`${bin}\` (Debian: apt-get install patroni etcd-server)`;
  }
  if (!postgresBinDir()) return 'needs PostgreSQL server binaries in /usr/lib/postgresql/<version>/bin';
  if (process.getuid?.() === 0 && !postgresUser()) return 'runs as root but there is no `postgres` user to run PostgreSQL as';
  return false;
}

export function haproxyAvailable(): boolean {
  return spawnSync('sh', ['-c', 'command -v haproxy']).status === 0;
}

/** The newest installed PostgreSQL server's bin directory. */
function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

function postgresUser(): { uid: number; gid: number } | null {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) return null;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts etcd, then the Patroni members one after the other (the first bootstraps with initdb,
 * the others copy it with pg_basebackup), and resolves once there is a running leader and a
 * running synchronous standby. Processes started so far are stopped if this fails. The logs are
 * in the temporary folder, kept with HEARTH_TEST_KEEP_LOGS=1.
 */
export async function startPatroniCluster(opts: { members: number; haproxy: boolean; timeoutMs?: number }): Promise<PatroniCluster> {
  const base = mkdtempSync(join(tmpdir(), 'hearth-patroni-'));
  const owner = process.getuid?.() === 0 ? postgresUser() : null;
  if (owner) chownSync(base, owner.uid, owner.gid);
  const procs: ChildProcess[] = [];
  const members: Member[] = [];
  let haproxyPort: number | null = null;

  const launch = (name: string, cmd: string, args: string[], asPostgres: boolean): ChildProcess => {
    const log = openSync(join(base, `${name}.log`), 'w');
    const proc = spawn(cmd, args, {
      cwd: base,
      stdio: ['ignore', log, log],
      env: { ...process.env, HOME: base },
      ...(asPostgres && owner ? { uid: owner.uid, gid: owner.gid } : {}),
    });
    procs.push(proc);
    return proc;
  };

  // If the test process dies without its after() hook, nothing it started may outlive it.
  const killAll = () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const m of members) killPostmaster(m.dataDir, 'SIGKILL');
  };
  process.once('exit', killAll);

  const stop = async () => {
    process.removeListener('exit', killAll);
    const exited = (p: ChildProcess) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r())));
    // Patroni stops its PostgreSQL on SIGTERM; etcd goes last so the members can still release their keys.
    const patronis = members.map((m) => m.proc);
    const others = procs.filter((p) => !patronis.includes(p));
    for (const p of patronis) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await Promise.race([Promise.all(patronis.map(exited)), sleep(15_000)]);
    for (const p of [...patronis, ...others]) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const m of members) killPostmaster(m.dataDir, 'SIGKILL');
    await Promise.race([Promise.all(procs.map(exited)), sleep(5000)]);
    if (!process.env.HEARTH_TEST_KEEP_LOGS) rmSync(base, { recursive: true, force: true });
  };

  try {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const etcdUrl = `http://127.0.0.1:${clientPort}`;
    launch('etcd', 'etcd', [
      '--name', 'etcd0',
      '--data-dir', join(base, 'etcd'),
      '--listen-client-urls', etcdUrl,
      '--advertise-client-urls', etcdUrl,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `etcd0=http://127.0.0.1:${peerPort}`,
    ], false);

    const docs = YAML.parse(readFileSync(DOCS_PATRONI, 'utf8'));
    const binDir = postgresBinDir()!;
    for (let i = 0; i < opts.members; i++) {
      const name = `pg${i}`;
      const pgPort = await freePort();
      const restPort = await freePort();
      const dataDir = join(base, name);
      const file = join(base, `${name}.yml`);
      writeFileSync(file, YAML.stringify(memberConfig(docs, { name, pgPort, restPort, dataDir, base, binDir, etcd: `127.0.0.1:${clientPort}` })));
      if (owner) chownSync(file, owner.uid, owner.gid);
      const proc = launch(name, 'patroni', [file], true);
      members.push({ name, pgPort, restPort, dataDir, proc });
    }

    if (opts.haproxy) {
      haproxyPort = await freePort();
      const file = join(base, 'haproxy.cfg');
      writeFileSync(file, haproxyConfig(haproxyPort, members));
      launch('haproxy', 'haproxy', ['-db', '-f', file], false);
    }

    const cluster: PatroniCluster = {
      members,
      multiHostUrl: (db) => `postgres://postgres@${members.map((m) => `127.0.0.1:${m.pgPort}`).join(',')}/${db}`,
      haproxyUrl: (db) => (haproxyPort === null ? null : `postgres://postgres@127.0.0.1:${haproxyPort}/${db}`),
      state: () => clusterState(members),
      killPostgres: (name) => {
        const m = members.find((x) => x.name === name);
        if (!m || !killPostmaster(m.dataDir, 'SIGKILL')) throw new Error(`no postmaster running for ${name}`);
      },
      stop,
    };

    const end = Date.now() + (opts.timeoutMs ?? 60_000);
    for (;;) {
      for (const p of procs) if (p.exitCode !== null) throw new Error(`${p.spawnargs.join(' ')} exited (${p.exitCode}); logs in ${base}`);
      const s = await cluster.state().catch(() => []);
      const running = (role: string) => s.some((m) => m.role === role && m.state === 'running');
      if (running('leader') && running('sync_standby')) break;
      if (Date.now() > end) throw new Error(`no leader with a synchronous standby: ${JSON.stringify(s)}`);
      await sleep(250);
    }
    return cluster;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** One member's Patroni file: the documented dcs and initdb settings, loopback addresses and own folders. */
function memberConfig(docs: any, m: { name: string; pgPort: number; restPort: number; dataDir: string; base: string; binDir: string; etcd: string }): unknown {
  return {
    scope: SCOPE,
    namespace: '/hearth-test/',
    name: m.name,
    restapi: { listen: `127.0.0.1:${m.restPort}`, connect_address: `127.0.0.1:${m.restPort}` },
    etcd3: { hosts: m.etcd },
    bootstrap: docs.bootstrap,
    postgresql: {
      listen: `127.0.0.1:${m.pgPort}`,
      connect_address: `127.0.0.1:${m.pgPort}`,
      data_dir: m.dataDir,
      bin_dir: m.binDir,
      pgpass: join(m.base, `${m.name}.pgpass`),
      authentication: {
        superuser: { username: 'postgres', password: 'test' },
        replication: { username: 'replicator', password: 'test' },
        rewind: { username: 'rewind_user', password: 'test' },
      },
      // Loopback only, so trust, as for the shared test database.
      pg_hba: ['local all all trust', 'host all all 127.0.0.1/32 trust', 'host replication replicator 127.0.0.1/32 trust'],
      parameters: { unix_socket_directories: m.base },
    },
  };
}

/** haproxy as docs/cluster/haproxy.cfg's `postgres_primary`, with faster checks for a test. */
function haproxyConfig(port: number, members: Member[]): string {
  return [
    'global',
    '    maxconn 200',
    'defaults',
    '    mode tcp',
    '    timeout connect 2s',
    '    timeout client 30m',
    '    timeout server 30m',
    'listen postgres_primary',
    `    bind 127.0.0.1:${port}`,
    '    option httpchk GET /primary',
    '    http-check expect status 200',
    '    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions',
    ...members.map((m) => `    server ${m.name} 127.0.0.1:${m.pgPort} check port ${m.restPort}`),
    '',
  ].join('\n');
}

async function clusterState(members: Member[]): Promise<MemberState[]> {
  let last: unknown;
  for (const m of members) {
    try {
      const res = await fetch(`http://127.0.0.1:${m.restPort}/cluster`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return ((await res.json()) as { members: MemberState[] }).members;
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`no Patroni member answered: ${(last as Error)?.message}`);
}

/** Signals the postmaster recorded in the data folder; whether one was running. */
function killPostmaster(dataDir: string, signal: NodeJS.Signals): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return false;
  }
  try {
    // A stale file's pid may since belong to another process: only a postmaster of this folder is signalled.
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dataDir)) return false;
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}
