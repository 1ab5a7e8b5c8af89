// Runs the compiled test suite: the pure core once, and every test that
// touches storage on SQLite and then on PostgreSQL.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import postgres from 'postgres';

const root = 'dist/test';
const only = process.argv.slice(2);
const backends = (process.env.HEARTH_TEST_BACKENDS ?? 'sqlite,postgres').split(',').filter(Boolean);
// Well above the slowest file, the database failover scenarios, whose steps bound themselves at two
// minutes each.
const FILE_TIMEOUT_MS = 10 * 60_000;
const pgUrl = process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return files(p);
    return p.endsWith('.test.js') ? [p] : [];
  });
}

const all = files(root).filter((f) => only.length === 0 || only.some((o) => f.includes(o))).sort();
const pure = all.filter((f) => f.startsWith(join(root, 'core')));
const storage = all.filter((f) => !pure.includes(f));

function run(label, list, env) {
  if (list.length === 0) return 0;
  console.log(`\n# ${label}: ${list.length} test files`);
  // A file that hangs, in a test or hook or at its exit (a handle left open), fails after
  // FILE_TIMEOUT_MS: the runner otherwise waits for it forever. A minute before that, such a file
  // prints what it holds open (test/helpers/hang-report.ts). Not --test-force-exit: on Node 20 it
  // ends some files before all their tests have run, and reports them passed.
  const hangReport = pathToFileURL(join(root, 'helpers/hang-report.js')).href;
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', `--test-timeout=${FILE_TIMEOUT_MS}`, `--import=${hangReport}`, ...list], {
    stdio: 'inherit',
    env: { HEARTH_TEST_HANG_REPORT_MS: String(FILE_TIMEOUT_MS - 60_000), ...process.env, ...env },
  });
  return r.status ?? 1;
}

async function postgresReachable() {
  const sql = postgres(pgUrl, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch (e) {
    console.error(`PostgreSQL is not reachable at ${pgUrl}: ${e.message}`);
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

let failed = 0;
failed |= run('core (pure)', pure, {});
for (const backend of backends) {
  if (backend === 'postgres' && storage.length > 0 && !(await postgresReachable())) {
    console.error('Start PostgreSQL, or set HEARTH_TEST_BACKENDS=sqlite to test on SQLite only.');
    failed = 1;
    continue;
  }
  failed |= run(`storage tests on ${backend}`, storage, { HEARTH_TEST_DB: backend });
  // The end-to-end scenarios once more with every test server as two nodes on one PostgreSQL
  // database behind a round-robin balancer (test/helpers/round-robin.ts).
  if (backend === 'postgres') {
    failed |= run('end-to-end scenarios over two nodes on postgres', storage.filter((f) => f.startsWith(join(root, 'e2e') + '/')), { HEARTH_TEST_DB: 'postgres', HEARTH_TEST_NODES: '2' });
  }
}
process.exit(failed ? 1 : 0);
