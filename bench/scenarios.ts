// The hot-path scenarios that run.js measures and compare.js measures across builds, in the
// order run.js runs them (hotPaths): what ran before a measure (the code V8 has compiled, the
// heap's state) is part of the figure. repeatedHotPaths makes the sends and initial syncs again at
// its end, once that compiling is behind.
import { type BenchClient, cpuMs, median, percentile, threadCpuMs, type ThreadCpu } from './client.js';
import { RawConnection } from './raw-client.js';

type Caller = Pick<BenchClient, 'call'>;

/** `n` messages sent one after the other on `client`, each waiting for the last's answer. */
export async function sequentialSends(client: Caller, token: string, roomId: string, n: number, tag: string): Promise<{ rate: number; p50: number; p99: number }> {
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const r = await client.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${tag}-${i}`, { msgtype: 'm.text', body: `message ${i}` }, token);
    if (r.status !== 200) throw new Error(`send failed: ${r.status} ${JSON.stringify(r.body)}`);
    lat.push(performance.now() - s);
  }
  const total = performance.now() - t0;
  lat.sort((a, b) => a - b);
  return { rate: (n / total) * 1000, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

/**
 * The durations of `syncs` initial syncs of a user in 100 rooms of 20 messages each, made by
 * `creator` and joined by `member` just before, one sync after the other, and the CPU the server
 * (process `pid`) spent over them. Its threads other than the one running JavaScript are mostly
 * V8's optimising compiler: code a server has not run yet is compiled while it first answers.
 */
export async function initialSyncsOf100Rooms(
  client: BenchClient,
  creator: string,
  member: string,
  syncs: number,
  pid: number,
): Promise<{ times: number[]; cpu: ThreadCpu }> {
  for (let i = 0; i < 100; i++) {
    const r = await client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { name: `room ${i}`, preset: 'public_chat' }, creator);
    await client.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(r.room_id)}`, {}, member);
    for (let m = 0; m < 20; m++) {
      await client.ok('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(r.room_id)}/send/m.room.message/i${i}-${m}`, { msgtype: 'm.text', body: `hello ${m}` }, creator);
    }
  }
  const times: number[] = [];
  const cpu0 = threadCpuMs(pid);
  for (let r = 0; r < syncs; r++) {
    const s = performance.now();
    const res = await client.ok<{ rooms: { join: Record<string, unknown> } }>('GET', '/_matrix/client/v3/sync', undefined, member);
    times.push(performance.now() - s);
    if (Object.keys(res.rooms.join).length < 100) throw new Error('initial sync is missing rooms');
  }
  const cpu1 = threadCpuMs(pid);
  return { times, cpu: { main: cpu1.main - cpu0.main, other: cpu1.other - cpu0.other } };
}

export interface HotPathFigures {
  /** Sequential sends a second, median of the rounds. */
  sends: number;
  sendP50: number;
  sendP99: number;
  /** Server CPU milliseconds per sequential send, median of the rounds. */
  cpuPerSend: number;
  concurrentRooms: number;
  concurrentOneRoom: number;
  wakeP50: number;
  wakeP99: number;
  /** Each initial sync of 100 rooms, in the order made. */
  initialSyncs: number[];
  /** Server CPU in ms over those initial syncs, by thread. */
  initialSyncCpu: ThreadCpu;
  /** Whom repeatedHotPaths measures with: the sender and room of the sequential sends, the user in 100 rooms. */
  actors: { sender: string; roomId: string; member: string };
}

export interface HotPathOptions {
  url: string;
  secret: string;
  /** The server's process, for its CPU time. */
  pid: number;
  /** Rounds of `sends` sequential sends. */
  rounds: number;
  sends: number;
  /** Initial syncs of 100 rooms. */
  syncs: number;
}

/**
 * run.js's hot paths on a fresh server, in its order: sequential sends from one client, concurrent
 * sends (8 clients in 8 rooms, then in one), sync wake-ups (a long-polling sync returning a message
 * sent while it waits), then initial syncs of a user in 100 rooms.
 */
export async function hotPaths(client: BenchClient, o: HotPathOptions): Promise<HotPathFigures> {
  const alice = await client.registerUser('alice', o.secret);
  const bob = await client.registerUser('bob', o.secret);
  const room = await client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, alice.token);
  await client.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(room.room_id)}`, {}, bob.token);

  // Sequential sends from one client, on one keep-alive connection.
  const one = await RawConnection.open(o.url);
  await sequentialSends(one, alice.token, room.room_id, 200, 'warm');
  const seq: { rate: number; p50: number; p99: number; cpu: number }[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const cpu0 = cpuMs(o.pid);
    const res = await sequentialSends(one, alice.token, room.room_id, o.sends, `seq${r}`);
    seq.push({ ...res, cpu: (cpuMs(o.pid) - cpu0) / o.sends });
  }
  one.close();

  // Concurrent sends: 8 clients, each in its own room, and 8 clients into one room.
  const senders = await Promise.all(Array.from({ length: 8 }, (_, i) => client.registerUser(`sender${i}`, o.secret)));
  const rooms = await Promise.all(senders.map((s) => client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', {}, s.token)));
  for (const s of senders) await client.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(room.room_id)}`, {}, s.token);
  const per = Math.floor(o.sends / 8);
  let t0 = performance.now();
  await Promise.all(senders.map((s, i) => sequentialSends(client, s.token, rooms[i]!.room_id, per, `c${i}`)));
  const concurrentRooms = ((per * 8) / (performance.now() - t0)) * 1000;
  t0 = performance.now();
  await Promise.all(senders.map((s, i) => sequentialSends(client, s.token, room.room_id, per, `one${i}`)));
  const concurrentOneRoom = ((per * 8) / (performance.now() - t0)) * 1000;

  const wake = await syncWakeups(o.url, alice.token, bob.token, room.room_id, 200);

  const carol = await client.registerUser('carol', o.secret);
  const initial = await initialSyncsOf100Rooms(client, alice.token, carol.token, o.syncs, o.pid);
  return {
    sends: median(seq.map((s) => s.rate)),
    sendP50: median(seq.map((s) => s.p50)),
    sendP99: median(seq.map((s) => s.p99)),
    cpuPerSend: median(seq.map((s) => s.cpu)),
    concurrentRooms,
    concurrentOneRoom,
    wakeP50: percentile(wake, 50),
    wakeP99: percentile(wake, 99),
    initialSyncs: initial.times,
    initialSyncCpu: initial.cpu,
    actors: { sender: alice.token, roomId: room.room_id, member: carol.token },
  };
}

export interface RepeatedFigures {
  /** Sequential sends a second, median of the rounds. */
  sends: number;
  /** Server CPU milliseconds per sequential send, median of the rounds. */
  cpuPerSend: number;
  /** Initial syncs of 100 rooms after `skip` more of them, median. */
  initialSync: number;
}

/**
 * hotPaths' sequential sends and initial syncs made again at its end, on the same server: V8 has
 * compiled the code they run by then (hotPaths' own figures, from the server's first minute,
 * include that compiling), and the database holds what hotPaths wrote. `skip` initial syncs run
 * before the `syncs` measured.
 */
export async function repeatedHotPaths(
  client: BenchClient,
  o: Pick<HotPathOptions, 'url' | 'pid' | 'rounds' | 'sends' | 'syncs'> & { skip: number },
  actors: HotPathFigures['actors'],
): Promise<RepeatedFigures> {
  const one = await RawConnection.open(o.url);
  const seq: { rate: number; cpu: number }[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const cpu0 = cpuMs(o.pid);
    const res = await sequentialSends(one, actors.sender, actors.roomId, o.sends, `again${r}`);
    seq.push({ rate: res.rate, cpu: (cpuMs(o.pid) - cpu0) / o.sends });
  }
  one.close();
  const times: number[] = [];
  for (let i = 0; i < o.skip + o.syncs; i++) {
    const s = performance.now();
    const res = await client.ok<{ rooms: { join: Record<string, unknown> } }>('GET', '/_matrix/client/v3/sync', undefined, actors.member);
    if (i >= o.skip) times.push(performance.now() - s);
    if (Object.keys(res.rooms.join).length < 100) throw new Error('initial sync is missing rooms');
  }
  return { sends: median(seq.map((s) => s.rate)), cpuPerSend: median(seq.map((s) => s.cpu)), initialSync: median(times) };
}

/**
 * `n` times: `member` long-polls /sync, `sender` sends a message, and the time from the send until
 * the sync returns is taken. Each on its own raw keep-alive connection, as the sequential sends.
 * `tag` starts the transaction ids, unique per sender. The durations, sorted.
 */
export async function syncWakeups(url: string, sender: string, member: string, roomId: string, n: number, tag = 'wake'): Promise<number[]> {
  type SyncBody = { next_batch: string; rooms?: { join?: Record<string, { timeline: { events: { content: { body?: string } }[] } }> } };
  const poller = await RawConnection.open(url);
  const sending = await RawConnection.open(url);
  const syncOk = async (query: string): Promise<SyncBody> => {
    const r = await poller.call<SyncBody>('GET', `/_matrix/client/v3/sync?${query}`, undefined, member);
    if (r.status !== 200) throw new Error(`sync failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  let since = (await syncOk('timeout=0')).next_batch;
  const wake: number[] = [];
  for (let i = 0; i < n; i++) {
    const poll = syncOk(`timeout=30000&since=${encodeURIComponent(since)}`);
    await new Promise((r) => setTimeout(r, 5));
    const s = performance.now();
    const sent = sending.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${tag}${i}`, { msgtype: 'm.text', body: `${tag} ${i}` }, sender);
    const res = await poll;
    wake.push(performance.now() - s);
    if ((await sent).status !== 200) throw new Error('wake-up send failed');
    since = res.next_batch;
    const got = res.rooms?.join?.[roomId]?.timeline.events.some((e) => e.content.body === `${tag} ${i}`);
    if (!got) {
      // The poll returned for another reason; catch up so the next round starts clean.
      since = (await syncOk(`timeout=0&since=${encodeURIComponent(since)}`)).next_batch;
    }
  }
  poller.close();
  sending.close();
  return wake.sort((a, b) => a - b);
}
