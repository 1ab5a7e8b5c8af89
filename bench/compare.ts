// `node dist/bench/compare.js <checkout> [<checkout> ...] [--rounds N] [--syncs N]`: run.js's
// hot-path figures (scenarios.ts's hotPaths, run in run.js's order, then repeatedHotPaths) for
// this build and for other built checkouts (a `git worktree` of an older commit, after its own
// `npm run build`), measured round by round with each build right after the other. `--syncs` (5
// by default, as run.js) is the number of initial syncs whose median a round reports: the
// durations of one server's syncs spread over a factor of two or more, so a median of five moves
// by tens of percent from one round to the next. A machine's speed drifts by tens of percent
// within minutes (virtual machines, boost clocks): only builds measured side by side, several
// times, compare. Prints each round and the medians per build.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { BenchClient, median } from './client.js';
import { hotPaths, repeatedHotPaths } from './scenarios.js';
import { startServerProcess } from './server-process.js';

const THIS = new URL('../..', import.meta.url).pathname;
const SENDS = 2000;

interface Figures {
  sends: number;
  cpuPerSend: number;
  wake: number;
  sync: number;
  /** Server CPU over those initial syncs: the JavaScript thread, the other threads (ThreadCpu). */
  syncCpuMain: number;
  syncCpuOther: number;
  /** The same measures made again at the end (repeatedHotPaths). */
  againSends: number;
  againCpuPerSend: number;
  againSync: number;
}

async function measure(root: string, syncCount: number): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-compare-'));
  const server = await startServerProcess({ dir, root });
  const client = new BenchClient(server.url, 16);
  try {
    const secret = (YAML.parse(readFileSync(join(dir, 'hearth.yaml'), 'utf8')) as { registration_shared_secret: string }).registration_shared_secret;
    const hot = await hotPaths(client, { url: server.url, secret, pid: server.proc.pid!, rounds: 3, sends: SENDS, syncs: syncCount });
    const again = await repeatedHotPaths(client, { url: server.url, pid: server.proc.pid!, rounds: 3, sends: SENDS, syncs: 10, skip: 5 }, hot.actors);
    return {
      sends: hot.sends,
      cpuPerSend: hot.cpuPerSend,
      wake: hot.wakeP50,
      sync: median(hot.initialSyncs),
      syncCpuMain: hot.initialSyncCpu.main,
      syncCpuOther: hot.initialSyncCpu.other,
      againSends: again.sends,
      againCpuPerSend: again.cpuPerSend,
      againSync: again.initialSync,
    };
  } finally {
    await client.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
const at = args.indexOf('--rounds');
const rounds = at >= 0 ? Number(args.splice(at, 2)[1]) : 3;
const atSyncs = args.indexOf('--syncs');
const syncCount = atSyncs >= 0 ? Number(args.splice(atSyncs, 2)[1]) : 5;
const builds = [THIS, ...args.map((a) => resolve(a))];
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(syncCount) || syncCount < 1 || builds.length < 2) {
  console.error('usage: node dist/bench/compare.js <built checkout> [...] [--rounds N] [--syncs N]');
  process.exit(2);
}
const seen = new Map<string, Figures[]>(builds.map((b) => [b, []]));
for (let r = 1; r <= rounds; r++) {
  for (const b of builds) {
    const f = await measure(b, syncCount);
    seen.get(b)!.push(f);
    console.error(
      `round ${r} ${b}: ${f.sends.toFixed(0)} sends/s, ${f.cpuPerSend.toFixed(3)} ms CPU per send, wake-up ${f.wake.toFixed(2)} ms, initial sync ${f.sync.toFixed(1)} ms ` +
        `(server CPU ${f.syncCpuMain.toFixed(0)} ms JavaScript thread, ${f.syncCpuOther.toFixed(0)} ms other threads); ` +
        `again: ${f.againSends.toFixed(0)} sends/s, ${f.againCpuPerSend.toFixed(3)} ms CPU per send, initial sync ${f.againSync.toFixed(1)} ms`,
    );
  }
}
const rows = builds.map((b) => {
  const all = seen.get(b)!;
  const m = (pick: (f: Figures) => number, digits: number) => median(all.map(pick)).toFixed(digits);
  return (
    `| ${b} | ${m((f) => f.sends, 0)} msgs/s | ${m((f) => f.cpuPerSend, 3)} ms | ${m((f) => f.wake, 2)} ms | ${m((f) => f.sync, 1)} ms ` +
    `| ${m((f) => f.syncCpuMain, 0)} / ${m((f) => f.syncCpuOther, 0)} ms ` +
    `| ${m((f) => f.againSends, 0)} msgs/s | ${m((f) => f.againCpuPerSend, 3)} ms | ${m((f) => f.againSync, 1)} ms |`
  );
});
console.log(
  `\nMedians of ${rounds} rounds\n\n| build | sequential sends | server CPU per send | sync wake-up p50 | initial sync, 100 rooms (median of ${syncCount}) ` +
    `| server CPU over those syncs: JavaScript thread / other threads | again at the end: sequential sends | CPU per send | initial sync (median of 10) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n${rows.join('\n')}`,
);
