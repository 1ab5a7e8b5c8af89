// Runs each cluster fault test several times on PostgreSQL and writes docs/cluster/fault-report.md
// with the median (p50) and maximum of the figures each run records (CLUSTER.md 11).
//
//   npm run build && node scripts/fault-report.mjs [--runs 5] [--only "db failover,node kill"]
//
// Not part of `npm test`: a full report takes several minutes. Each test appends one JSON line of
// figures per run to the file named by HEARTH_FAULT_FIGURES (test/cluster/cluster-helpers.ts).
// A run that fails or is skipped records nothing and is counted as such in the report.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

const SCENARIOS = [
  { fault: 'node kill', file: 'dist/test/cluster/node-kill.test.js', what: 'SIGKILL one of three Hearth nodes under load (4 clients; lease TTL 3 s)' },
  { fault: 'paused lease holder', file: 'dist/test/cluster/leases.test.js', what: 'SIGSTOP a lease holder (TTL 1.5 s) until another node takes the lease' },
  { fault: 'partition', file: 'dist/test/cluster/partition.test.js', what: 'cut a Hearth node off from PostgreSQL (network namespace, link down; lease TTL 3 s)' },
  { fault: 'db failover', file: 'dist/test/cluster/db-failover.test.js', what: 'SIGKILL the PostgreSQL primary under Patroni (3 members, synchronous standby) under load, two Hearth nodes (multi-host URL, haproxy)' },
];

/** Column order and headings; a fault shows the columns its test records. */
const FIGURES = [
  ['failed_requests', 'requests failed (retried)'],
  ['lost', 'acknowledged writes lost'],
  ['duplicates', 'duplicates'],
  ['longest_gap_ms', 'longest gap between writes (ms)'],
  ['promotion_ms', 'new primary after (ms)'],
  ['not_ready_ms', 'node not ready after (ms)'],
  ['lease_move_ms', 'lease move (ms)'],
  ['ready_again_ms', 'ready after the link returned (ms)'],
  ['sync_lag_max_ms', '/sync lag, max (ms)'],
];

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const runs = Number(arg('--runs', '5'));
const only = arg('--only', '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const out = arg('--out', 'docs/cluster/fault-report.md');
const chosen = SCENARIOS.filter((s) => only.length === 0 || only.includes(s.fault));
if (!Number.isInteger(runs) || runs < 1 || chosen.length === 0) {
  console.error(`usage: node scripts/fault-report.mjs [--runs N] [--only "${SCENARIOS.map((s) => s.fault).join(',')}"] [--out file]`);
  process.exit(2);
}
for (const s of chosen) {
  if (!existsSync(s.file)) {
    console.error(`${s.file} is missing: run \`npm run build\` first`);
    process.exit(2);
  }
}

const dir = mkdtempSync(join(os.tmpdir(), 'hearth-faults-'));
const figuresFile = join(dir, 'figures.jsonl');
writeFileSync(figuresFile, '');
const outcomes = new Map(chosen.map((s) => [s.fault, { passed: 0, failed: 0 }]));
const started = new Date();
for (let i = 1; i <= runs; i++) {
  for (const s of chosen) {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', s.file], {
      env: { ...process.env, HEARTH_TEST_DB: 'postgres', HEARTH_FAULT_FIGURES: figuresFile },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    const skipped = /^# skipped [1-9]/m.test(r.stdout ?? '') && !/^# pass [1-9]/m.test(r.stdout ?? '');
    const ok = r.status === 0 && !skipped;
    outcomes.get(s.fault)[ok ? 'passed' : 'failed']++;
    // What the test printed (its figures in words): TAP comment lines other than the summary.
    const printed = (r.stdout ?? '').split('\n').filter((l) => /^\s*# /.test(l) && !/^\s*# (Subtest|tests|suites|pass|fail|cancelled|skipped|todo|duration_ms)\b/.test(l));
    console.log(`${s.fault} run ${i}/${runs}: ${ok ? 'passed' : skipped ? 'skipped' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    for (const l of printed) console.log(`  ${l.trim().slice(2)}`);
    if (!ok) console.log((r.stdout ?? '').split('\n').filter((l) => /not ok|error:|skip/.test(l)).slice(0, 10).join('\n'));
  }
}

const records = readFileSync(figuresFile, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l));
rmSync(dir, { recursive: true, force: true });

function p50(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

function pgVersion() {
  const r = spawnSync('sh', ['-c', 'ls /usr/lib/postgresql | sort -n | tail -1']);
  const v = r.stdout?.toString().trim();
  return v ? spawnSync(`/usr/lib/postgresql/${v}/bin/postgres`, ['--version']).stdout?.toString().trim() : 'unknown';
}

function version(cmd, args) {
  const r = spawnSync(cmd, args);
  return r.status === 0 ? (r.stdout.toString() + r.stderr.toString()).split('\n')[0].trim() : 'not installed';
}

const cpus = os.cpus();
const lines = [
  '# Fault report',
  '',
  `Written by \`node scripts/fault-report.mjs --runs ${runs}\` on ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
  '',
  `Machine: ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GB RAM, ${os.type()} ${os.release()}; ` +
    `load average ${os.loadavg()[0].toFixed(1)} when the report was written (the machine is shared, so timings include other work). ` +
    `Node ${process.version}; ${pgVersion()}; ${version('patroni', ['--version'])}; ${version('etcd', ['--version'])}; ${version('haproxy', ['-v'])}.`,
  '',
  'Each figure is the median (p50) / maximum over the runs that passed. A run that failed or was skipped records nothing; ' +
    'the runs column says how many passed. Targets (issue 7): 0 acknowledged writes lost and 0 duplicates in every run; ' +
    'unavailability under 2 s after a node loss and under 20 s after a database failover; lease move under 20 s.',
  '',
  '| fault | what the test does | runs passed |',
  '| --- | --- | --- |',
  ...chosen.map((s) => `| ${s.fault} | ${s.what} | ${outcomes.get(s.fault).passed} of ${runs} |`),
  '',
];
for (const s of chosen) {
  const mine = records.filter((r) => r.fault === s.fault);
  lines.push(`## ${s.fault}`, '');
  if (mine.length === 0) {
    lines.push('No run passed, so there are no figures.', '');
    continue;
  }
  const cols = FIGURES.filter(([key]) => mine.some((r) => key in r));
  lines.push('| figure | p50 | max |', '| --- | --- | --- |');
  for (const [key, heading] of cols) {
    const xs = mine.map((r) => r[key]).filter((x) => typeof x === 'number');
    lines.push(`| ${heading} | ${p50(xs)} | ${Math.max(...xs)} |`);
  }
  lines.push('', `Per run: ${mine.map((r) => cols.map(([k]) => `${k}=${r[k]}`).join(' ')).join('; ')}`, '');
}
lines.push(
  '## Not in this report',
  '',
  'Throughput and /sync latency for 1, 2 and 3 nodes (CLUSTER.md 11, scaling), and how long a stream position\'s lock ' +
    'is held with a synchronous standby (CLUSTER.md 4): `npm run bench:cluster` measures them; the README\'s ' +
    '"Several nodes" section has its figures.',
  '',
);
writeFileSync(out, lines.join('\n'));
console.log(`wrote ${out}`);
