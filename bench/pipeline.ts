// In-process probe of the send path without HTTP: sequential sendMessage calls
// through the rooms service, with CPU time per send (and optionally a CPU
// profile of just the loop). For telling pipeline cost from HTTP cost.
//
//   node dist/bench/pipeline.js [--sends 3000] [--rounds 3] [--sync FULL|NORMAL] [--prof FILE] [--http] [--alloc FILE]
// --http sends through the test helper's fetch instead (client in the same process);
// --alloc writes a sampling heap profile that keeps collected objects (allocation per send).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { startTestServer } from '../test/helpers/server.js';
import type { Requester } from '../src/http/requester.js';

const args = process.argv.slice(2);
const opt = (name: string, def?: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const SENDS = Number(opt('sends', '3000'));
const ROUNDS = Number(opt('rounds', '3'));
const PROF = opt('prof');
const HTTP = args.includes('--http');
const ALLOC = opt('alloc');

// SQLite in the test server's data dir (the harness's own default is NORMAL; the bench's is FULL).
const server = await startTestServer({ config: { database: { url: 'hearth.db', sqlite_synchronous: opt('sync', 'FULL'), pool_size: 5 } } });
const alice = await server.registerUser('alice');
const bob = await server.registerUser('bob');
const room = await server.request<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { body: { preset: 'public_chat' }, token: alice.accessToken });
await server.request('POST', `/_matrix/client/v3/join/${encodeURIComponent(room.body.room_id)}`, { body: {}, token: bob.accessToken });
const roomId = room.body.room_id;
const rooms = server.hs.ctx.services.rooms;
const requester: Requester = { userId: alice.userId, deviceId: alice.deviceId, isAdmin: false, tokenId: '' };

async function send(tag: string, i: number): Promise<void> {
  const content = { msgtype: 'm.text', body: `message ${i}` };
  if (HTTP) {
    const r = await server.request('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${tag}-${i}`, { body: content, token: alice.accessToken });
    if (r.status !== 200) throw new Error(`send failed: ${r.status}`);
  } else {
    await rooms.sendMessage(requester, roomId, 'm.room.message', `${tag}-${i}`, content);
  }
}

for (let i = 0; i < 300; i++) await send('warm', i);
let session: Session | undefined;
if (PROF) {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
if (ALLOC) {
  session ??= new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  } as never);
}
for (let r = 0; r < ROUNDS; r++) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < SENDS; i++) await send(`r${r}`, i);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `round ${r}: ${((SENDS / ms) * 1000).toFixed(0)} sends/s, wall ${(ms / SENDS).toFixed(3)} ms/send, CPU ${((cpu.user + cpu.system) / 1000 / SENDS).toFixed(3)} ms/send (user ${(cpu.user / 1000 / SENDS).toFixed(3)})`,
  );
}
if (session && ALLOC) {
  const { profile } = await session.post('HeapProfiler.stopSampling');
  writeFileSync(ALLOC, JSON.stringify(profile));
}
if (session && PROF) {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(PROF, JSON.stringify(profile));
  session.disconnect();
}
await server.stop();
