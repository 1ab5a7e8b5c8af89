// `node dist/bench/compare.js <checkout> [<checkout> ...] [--rounds N] [--syncs N]`: run.js's
// sequential-send and initial-sync figures for this build and for other built checkouts (a `git
// worktree` of an older commit, after its own `npm run build`), measured round by round with each
// build right after the other. `--syncs` (5 by default, as run.js) is the number of initial syncs
// whose median a round reports: the durations of one server's syncs spread over a factor of two
// or more, so a median of five moves by tens of percent from one round to the next. A machine's speed drifts by tens of percent within minutes (virtual machines,
// boost clocks): only builds measured side by side, several times, compare. Prints each round and
// the medians per build.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { BenchClient, cpuMs, median } from './client.js';
import { RawConnection } from './raw-client.js';
import { initialSyncsOf100Rooms, sequentialSends } from './scenarios.js';
import { startServerProcess } from './server-process.js';

const THIS = new URL('../..', import.meta.url).pathname;
const SENDS = 2000;

interface Figures {
  sends: number;
  cpuPerSend: number;
  sync: number;
}

async function measure(root: string, syncCount: number): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-compare-'));
  const server = await startServerProcess({ dir, root });
  const client = new BenchClient(server.url, 16);
  try {
    const secret = (YAML.parse(readFileSync(join(dir, 'hearth.yaml'), 'utf8')) as { registration_shared_secret: string }).registration_shared_secret;
    const pid = server.proc.pid!;
    const alice = await client.registerUser('alice', secret);
    const bob = await client.registerUser('bob', secret);
    const room = await client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, alice.token);
    await client.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(room.room_id)}`, {}, bob.token);
    const one = await RawConnection.open(server.url);
    await sequentialSends(one, alice.token, room.room_id, 200, 'warm');
    const rounds: { rate: number; cpu: number }[] = [];
    for (let r = 0; r < 3; r++) {
      const cpu0 = cpuMs(pid);
      const { rate } = await sequentialSends(one, alice.token, room.room_id, SENDS, `seq${r}`);
      rounds.push({ rate, cpu: (cpuMs(pid) - cpu0) / SENDS });
    }
    one.close();
    const carol = await client.registerUser('carol', secret);
    const syncs = await initialSyncsOf100Rooms(client, alice.token, carol.token, syncCount);
    return { sends: median(rounds.map((r) => r.rate)), cpuPerSend: median(rounds.map((r) => r.cpu)), sync: median(syncs) };
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
    console.error(`round ${r} ${b}: ${f.sends.toFixed(0)} sends/s, ${f.cpuPerSend.toFixed(3)} ms CPU per send, initial sync ${f.sync.toFixed(1)} ms`);
  }
}
const rows = builds.map((b) => {
  const all = seen.get(b)!;
  return `| ${b} | ${median(all.map((f) => f.sends)).toFixed(0)} msgs/s | ${median(all.map((f) => f.cpuPerSend)).toFixed(3)} ms | ${median(all.map((f) => f.sync)).toFixed(1)} ms |`;
});
console.log(`\nMedians of ${rounds} rounds\n\n| build | sequential sends | server CPU per send | initial sync, 100 rooms (median of ${syncCount}) |\n| --- | --- | --- | --- |\n${rows.join('\n')}`);
