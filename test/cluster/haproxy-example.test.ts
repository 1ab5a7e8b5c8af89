// docs/cluster/haproxy.cfg, the example the cluster guide (docs/cluster.md, section 4) tells
// operators to install, checked as they would use it: haproxy accepts it once the certificate
// path is filled in, and its `postgres_primary` entry point routes to whichever member Patroni's
// REST API calls primary, moving when that changes. Patroni is played by small HTTP servers
// answering its /primary and /replica checks; every member's database is the local PostgreSQL
// (the primary's directly, the others through counting TCP relays, so the test can tell where a
// connection went). Every address of the example is rewritten to loopback before haproxy runs.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { freePort, REFUSED_PORT, TEST_DB } from '../helpers/server.js';
import { haproxyAvailable } from './patroni-cluster.js';

const DOCS_HAPROXY = new URL('../../../docs/cluster/haproxy.cfg', import.meta.url).pathname;
/** Where the guide says to put the certificate. */
const CERT_PLACEHOLDER = '/etc/haproxy/certs/matrix.example.org.pem';
const PG = new URL(process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');

function skipReason(): string | false {
  if (TEST_DB !== 'postgres') return 'runs with the PostgreSQL backend (HEARTH_TEST_DB=postgres): it routes to the local PostgreSQL';
  if (!haproxyAvailable()) return 'needs `haproxy` on PATH (Debian: apt-get install haproxy; .ci/run installs it)';
  if (spawnSync('sh', ['-c', 'command -v openssl']).status !== 0) return 'needs `openssl` to make the certificate the example names';
  return false;
}

/** One PostgreSQL member as haproxy sees it. */
interface Member {
  name: string;
  /** Its Patroni stand-in: 200 on /primary only for the primary, on /replica only for the others. */
  checkPort: number;
  /** The port haproxy forwards this member's database connections to. */
  dbPort: number;
  /** Connections that went through this member's relay (the primary at the start has none). */
  relayed: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('docs/cluster/haproxy.cfg', { skip: skipReason() }, () => {
  let dir: string;
  let cert: string;
  let haproxy: ChildProcess | null = null;
  let haproxyLog = '';
  const closers: (() => Promise<void>)[] = [];
  const members: Member[] = [];
  let primary = 0;
  const ports = { primary: 0, replicas: 0, stats: 0 };
  let inter = 0;
  let fall = 0;
  let rise = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-haproxy-'));
    const key = join(dir, 'key.pem');
    const crt = join(dir, 'crt.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ed25519', '-nodes', '-days', '2', '-subj', '/CN=matrix.example.org', '-keyout', key, '-out', crt], { stdio: 'ignore' });
    cert = join(dir, 'matrix.example.org.pem');
    // haproxy wants the chain and the key in one file, as the guide says.
    writeFileSync(cert, readFileSync(crt, 'utf8') + readFileSync(key, 'utf8'));
  });
  after(async () => {
    if (haproxy && haproxy.exitCode === null && haproxy.signalCode === null) {
      const exited = new Promise((r) => haproxy!.once('exit', r));
      haproxy.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (haproxy.exitCode === null && haproxy.signalCode === null) haproxy.kill('SIGKILL');
    }
    for (const close of closers) await close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is a valid haproxy configuration once the certificate is in place', () => {
    const file = join(dir, 'as-documented.cfg');
    const text = readFileSync(DOCS_HAPROXY, 'utf8');
    assert.ok(text.includes(CERT_PLACEHOLDER), 'the example names the certificate path the guide gives');
    writeFileSync(file, text.replaceAll(CERT_PLACEHOLDER, cert));
    // -c parses and loads everything (the certificate included) without binding or connecting.
    const r = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, `haproxy -c: ${r.stdout}${r.stderr}`);
  });

  /** Starts a member's check stand-in and, unless it is the first, a relay to the local PostgreSQL. */
  async function startMember(index: number, name: string): Promise<Member> {
    const pgPort = Number(PG.port || 5432);
    const m: Member = { name, checkPort: 0, dbPort: pgPort, relayed: 0 };
    const http: HttpServer = createHttpServer((req, res) => {
      const isPrimary = primary === index;
      const ok = (req.url === '/primary' && isPrimary) || (req.url === '/replica' && !isPrimary);
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ role: isPrimary ? 'primary' : 'replica' }));
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    m.checkPort = (http.address() as { port: number }).port;
    closers.push(() => new Promise<void>((r) => http.close(() => r())));
    if (index > 0) {
      const relay: TcpServer = createTcpServer((c) => {
        m.relayed++;
        const up = connect(pgPort, PG.hostname);
        c.pipe(up).pipe(c);
        c.on('error', () => up.destroy());
        up.on('error', () => c.destroy());
      });
      await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
      m.dbPort = (relay.address() as { port: number }).port;
      closers.push(() => new Promise<void>((r) => relay.close(() => r())));
    }
    return m;
  }

  /**
   * The example with the guide's placeholders filled for this machine: the certificate, every
   * bind on a free loopback port, the PostgreSQL members at the stand-ins and the Hearth nodes at a
   * loopback port nothing listens on. Throws if an address of the example is left unmapped.
   */
  async function renderForLoopback(text: string): Promise<string> {
    const bindPorts = new Map<string, number>();
    const bindPort = async (orig: string) => {
      if (!bindPorts.has(orig)) bindPorts.set(orig, await freePort());
      return bindPorts.get(orig)!;
    };
    const lines: string[] = [];
    for (const line of text.replaceAll(CERT_PLACEHOLDER, cert).split('\n')) {
      let out = line;
      const bind = /^(\s*bind\s+)(?:[\d.]*):(\d+)(.*)$/.exec(line);
      if (bind) out = `${bind[1]}127.0.0.1:${await bindPort(bind[2]!)}${bind[3]}`;
      const pg = /^(\s*server\s+(pg\d+)\s+)\S+(\s+check\s+port\s+)\d+(.*)$/.exec(line);
      if (pg) {
        const m = members.find((x) => x.name === pg[2]);
        assert.ok(m, `a stand-in for ${pg[2]}`);
        out = `${pg[1]}127.0.0.1:${m.dbPort}${pg[3]}${m.checkPort}${pg[4]}`;
      }
      const node = /^(\s*server\s+hearth\d+\s+)\S+(.*)$/.exec(line);
      if (node) out = `${node[1]}127.0.0.1:${REFUSED_PORT}${node[2]}`;
      // Not root: haproxy could not switch to the haproxy user.
      if (process.getuid?.() !== 0 && /^\s*(user|group)\s/.test(line)) continue;
      lines.push(out);
    }
    const rendered = lines.join('\n');
    const settings = lines.map((l) => l.replace(/#.*/, '')).join('\n');
    assert.doesNotMatch(settings, /\b10\.\d+\.\d+\.\d+/, 'every address of the example is mapped to loopback');
    ports.primary = bindPorts.get('5000')!;
    ports.replicas = bindPorts.get('5001')!;
    ports.stats = bindPorts.get('7000')!;
    assert.ok(ports.primary && ports.replicas && ports.stats, 'the example binds 5000, 5001 and 7000');
    return rendered;
  }

  /** `status` of each server of a proxy, from the stats page (CSV). */
  async function serverStatus(proxy: string): Promise<Map<string, string>> {
    const res = await fetch(`http://127.0.0.1:${ports.stats}/;csv`);
    const [header, ...rows] = (await res.text()).trim().split('\n');
    const cols = header!.replace(/^# /, '').split(',');
    const out = new Map<string, string>();
    for (const row of rows) {
      const f = row.split(',');
      if (f[cols.indexOf('pxname')] === proxy) out.set(f[cols.indexOf('svname')]!, f[cols.indexOf('status')]!);
    }
    return out;
  }

  /** Waits until the proxy's checks show exactly `up` UP and every other member DOWN; the time it took. */
  async function untilRouted(proxy: string, up: string[], timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    let last = new Map<string, string>();
    while (Date.now() - t0 < timeoutMs) {
      if (haproxy?.exitCode !== null || haproxy.signalCode !== null) throw new Error(`haproxy exited: ${haproxyLog}`);
      // The stats page answers once haproxy has started.
      last = await serverStatus(proxy).catch(() => new Map<string, string>());
      if (members.every((m) => last.get(m.name) === (up.includes(m.name) ? 'UP' : 'DOWN'))) return Date.now() - t0;
      await sleep(100);
    }
    throw new Error(`${proxy}: wanted ${up.join(',')} UP, got ${JSON.stringify([...last])}; haproxy said: ${haproxyLog}`);
  }

  function client(port: number) {
    return postgres({ host: '127.0.0.1', port, user: decodeURIComponent(PG.username || 'postgres'), password: decodeURIComponent(PG.password), database: PG.pathname.slice(1) || 'postgres', max: 1, connect_timeout: 3, onnotice: () => {} });
  }

  /** Runs `select 1` over a new connection through `port`; which member's relay it went through ('' for none). */
  async function selectOneThrough(port: number): Promise<string> {
    const before = members.map((m) => m.relayed);
    const sql = client(port);
    try {
      const [row] = await sql`select 1 as one`;
      assert.equal(row?.one, 1);
    } finally {
      await sql.end({ timeout: 2 });
    }
    return members.find((m, i) => m.relayed > before[i]!)?.name ?? '';
  }

  it('routes port 5000 to the member Patroni calls primary, and moves within its check interval when that changes', async () => {
    const text = readFileSync(DOCS_HAPROXY, 'utf8');
    const names = [...new Set([...text.matchAll(/^\s*server\s+(pg\d+)\s/gm)].map((m) => m[1]!))];
    assert.ok(names.length >= 2, 'the example lists the PostgreSQL members');
    for (const [i, name] of names.entries()) members.push(await startMember(i, name));
    const section = text.slice(text.indexOf('listen postgres_primary'));
    const ds = /default-server\s+inter\s+(\d+)s\s+fall\s+(\d+)\s+rise\s+(\d+)/.exec(section);
    assert.ok(ds, 'postgres_primary sets inter, fall and rise');
    [inter, fall, rise] = [Number(ds[1]) * 1000, Number(ds[2]), Number(ds[3])];

    const file = join(dir, 'loopback.cfg');
    writeFileSync(file, await renderForLoopback(text));
    const check = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
    assert.equal(check.status, 0, `haproxy -c: ${check.stdout}${check.stderr}`);
    haproxy = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => void (haproxyLog = (haproxyLog + b.toString()).slice(-4000));
    haproxy.stdout!.on('data', keep);
    haproxy.stderr!.on('data', keep);

    // At start haproxy counts every server up until `fall` checks have failed.
    const bound = (Math.max(fall, rise) + 1) * inter + 1500;
    await untilRouted('postgres_primary', [names[0]!], bound + 2000);
    await untilRouted('postgres_replicas', names.slice(1), bound + 2000);
    for (let i = 0; i < 3; i++) assert.equal(await selectOneThrough(ports.primary), '', 'port 5000 reaches the primary');
    assert.ok(names.slice(1).includes(await selectOneThrough(ports.replicas)), 'port 5001 reaches a replica');

    // A session open on the old primary when it is marked down is cut (on-marked-down shutdown-sessions).
    const held = client(ports.primary);
    const [{ pid: pidBefore }] = await held`select pg_backend_pid() as pid`;

    primary = 1;
    const moved = await untilRouted('postgres_primary', [names[1]!], bound);
    console.log(`haproxy moved port 5000 to the new primary ${moved} ms after the checks changed (inter ${inter} ms, fall ${fall}, rise ${rise})`);
    assert.ok(moved <= bound, `moved within ${bound} ms`);
    assert.equal(await selectOneThrough(ports.primary), names[1], 'port 5000 reaches the new primary');
    const [{ pid: pidAfter }] = await held`select pg_backend_pid() as pid`;
    assert.notEqual(pidAfter, pidBefore, 'the session to the old primary was cut and the client reconnected');
    await held.end({ timeout: 2 });
  });
});
