// Simplified sliding sync (MSC4186), as Element X drives it: the first
// response of a new connection for a user in 200 rooms (a list of the 20 most
// recent rooms, one timeline event each) against an initial /sync of the same
// user, and the wake-up of a waiting request when another user sends into one
// of the rooms (the figure next to /sync's wake-up), or when the user changes a thread
// subscription on another connection (MSC4306/MSC4308); then, with a thread
// in every room, the first response with MSC4360's threads extension on (roots
// included, as a client does on starting) beside the same response without it.
// Called by run.ts
// (HEARTH_BENCH_ONLY=sliding-sync runs this scenario alone).
import type { BenchClient } from './client.js';
import { median, percentile } from './client.js';
import { RawConnection } from './raw-client.js';
import { syncWakeups } from './scenarios.js';

export interface SlidingSyncEnv {
  url: string;
  secret: string;
  client: BenchClient;
  record(r: { name: string; value: number; unit: string; target?: string; detail?: string }): void;
}

const PATH = '/_matrix/client/unstable/org.matrix.simplified_msc3575/sync';
const ROOMS = Number(process.env.HEARTH_BENCH_SS_ROOMS ?? 200);
const WAKES = Number(process.env.HEARTH_BENCH_SS_WAKES ?? 200);
const SUB_WAKES = 50;

/** The list Element X opens with: the most recent rooms, one event each, the state its room list shows. */
const LIST = {
  all: {
    ranges: [[0, 19]],
    timeline_limit: 1,
    required_state: [
      ['m.room.name', ''],
      ['m.room.avatar', ''],
      ['m.room.encryption', ''],
      ['m.room.member', '$ME'],
      ['m.room.member', '$LAZY'],
    ],
    filters: { not_room_types: ['m.space'] },
  },
};

type SsBody = { pos: string; lists: Record<string, { count: number }>; rooms: Record<string, { timeline?: { content: { body?: string } }[] }> };

export async function slidingSyncBench(env: SlidingSyncEnv): Promise<void> {
  const { client, record } = env;
  const dave = await client.registerUser('ss_dave', env.secret);
  const erin = await client.registerUser('ss_erin', env.secret);
  const rooms: string[] = [];
  const firstMessages: string[] = [];
  for (let i = 0; i < ROOMS; i++) {
    const r = await client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { name: `ss room ${i}`, preset: 'public_chat' }, dave.token);
    const m = await client.ok<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(r.room_id)}/send/m.room.message/ss${i}`, { msgtype: 'm.text', body: `hello ${i}` }, dave.token);
    rooms.push(r.room_id);
    firstMessages.push(m.event_id);
  }
  const hot = rooms[0]!;
  await client.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(hot)}`, {}, erin.token);

  // First response of a new connection, and an initial /sync of the same user, alternately.
  const first: number[] = [];
  const full: number[] = [];
  for (let r = 0; r < 5; r++) {
    let s = performance.now();
    const res = await client.ok<SsBody>('POST', PATH, { conn_id: `first${r}`, lists: LIST }, dave.token);
    first.push(performance.now() - s);
    if (res.lists.all!.count !== ROOMS || Object.keys(res.rooms).length !== 20) throw new Error('sliding sync is missing rooms');
    s = performance.now();
    await client.ok('GET', '/_matrix/client/v3/sync', undefined, dave.token);
    full.push(performance.now() - s);
  }
  record({ name: `sliding sync first response, ${ROOMS} rooms (top 20)`, value: median(first), unit: 'ms', detail: 'median of 5' });
  record({ name: `initial /sync of the same ${ROOMS}-room user`, value: median(full), unit: 'ms', detail: 'median of 5' });

  // Wake-up: dave waits on his connection; erin sends; time from the send until dave's request returns it.
  const poller = await RawConnection.open(env.url);
  const sender = await RawConnection.open(env.url);
  const ss = async (pos: string | null, timeout: number): Promise<SsBody> => {
    const q = pos ? `?pos=${encodeURIComponent(pos)}&timeout=${timeout}` : '';
    const r = await poller.call<SsBody>('POST', `${PATH}${q}`, { conn_id: 'wake', lists: LIST }, dave.token);
    if (r.status !== 200) throw new Error(`sliding sync failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  let pos = (await ss(null, 0)).pos;
  const wake: number[] = [];
  for (let i = 0; i < WAKES; i++) {
    const poll = ss(pos, 30_000);
    await new Promise((r) => setTimeout(r, 5));
    const s = performance.now();
    const sent = sender.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(hot)}/send/m.room.message/sswake${i}`, { msgtype: 'm.text', body: `wake ${i}` }, erin.token);
    const res = await poll;
    wake.push(performance.now() - s);
    if ((await sent).status !== 200) throw new Error('wake-up send failed');
    pos = res.pos;
    if (!res.rooms[hot]?.timeline?.some((e) => e.content.body === `wake ${i}`)) pos = (await ss(pos, 0)).pos;
  }
  wake.sort((a, b) => a - b);
  record({ name: 'sliding sync wake-up p50', value: percentile(wake, 50), unit: 'ms' });
  record({ name: 'sliding sync wake-up p99', value: percentile(wake, 99), unit: 'ms' });

  // The same wake-up through /sync, right after, for a figure taken under the same load.
  const syncWake = await syncWakeups(env.url, erin.token, dave.token, hot, WAKES, 'syncwake');
  record({ name: `/sync wake-up p50, same ${ROOMS}-room user`, value: percentile(syncWake, 50), unit: 'ms' });

  // A thread subscription change (MSC4306) made on another connection, as another of dave's
  // devices would, answering a connection that waits with MSC4308's extension on.
  const ext = { 'io.element.msc4308.thread_subscriptions': { enabled: true } };
  const root = (await client.ok<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(hot)}/send/m.room.message/ssroot`, { msgtype: 'm.text', body: 'a thread' }, erin.token)).event_id;
  const subscription = `/_matrix/client/unstable/io.element.msc4306/rooms/${encodeURIComponent(hot)}/thread/${encodeURIComponent(root)}/subscription`;
  const threads = async (p: string | null, timeout: number): Promise<{ pos: string; extensions?: Record<string, unknown> }> => {
    const q = p ? `?pos=${encodeURIComponent(p)}&timeout=${timeout}` : '';
    const r = await poller.call<{ pos: string; extensions?: Record<string, unknown> }>('POST', `${PATH}${q}`, { conn_id: 'threads', extensions: ext }, dave.token);
    if (r.status !== 200) throw new Error(`sliding sync failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  let tpos = (await threads(null, 0)).pos;
  const subWake: number[] = [];
  for (let i = 0; i < SUB_WAKES; i++) {
    const poll = threads(tpos, 30_000);
    await new Promise((r) => setTimeout(r, 5));
    const s = performance.now();
    // Subscribing and unsubscribing in turn: each is a change.
    const changed = sender.call(i % 2 === 0 ? 'PUT' : 'DELETE', subscription, i % 2 === 0 ? {} : undefined, dave.token);
    const res = await poll;
    subWake.push(performance.now() - s);
    if ((await changed).status !== 200) throw new Error('subscription change failed');
    tpos = res.pos;
    if (!res.extensions?.['io.element.msc4308.thread_subscriptions']) tpos = (await threads(tpos, 0)).pos;
  }
  poller.close();
  sender.close();
  subWake.sort((a, b) => a - b);
  record({ name: 'sliding sync wake-up by a thread subscription change p50', value: percentile(subWake, 50), unit: 'ms' });

  // A thread in every room: each first message gets a reply.
  for (let i = 0; i < ROOMS; i++) {
    const reply = { msgtype: 'm.text', body: `reply ${i}`, 'm.relates_to': { rel_type: 'm.thread', event_id: firstMessages[i] } };
    await client.ok('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(rooms[i]!)}/send/m.room.message/ssreply${i}`, reply, dave.token);
  }
  const threadsExt = { 'io.element.msc4360.threads': { enabled: true, include_roots: true } };
  const plain: number[] = [];
  const withThreads: number[] = [];
  for (let r = 0; r < 5; r++) {
    let s = performance.now();
    await client.ok<SsBody>('POST', PATH, { conn_id: `plain${r}`, lists: LIST }, dave.token);
    plain.push(performance.now() - s);
    s = performance.now();
    const res = await client.ok<SsBody & { extensions: Record<string, { updates?: Record<string, unknown> }> }>('POST', PATH, { conn_id: `threads${r}`, lists: LIST, extensions: threadsExt }, dave.token);
    withThreads.push(performance.now() - s);
    if (Object.keys(res.extensions['io.element.msc4360.threads']?.updates ?? {}).length === 0) throw new Error('the threads extension sent no updates');
  }
  record({ name: `sliding sync first response, ${ROOMS} rooms with a thread each`, value: median(plain), unit: 'ms', detail: 'median of 5' });
  record({ name: 'the same with the threads extension (100 threads, roots included)', value: median(withThreads), unit: 'ms', detail: 'median of 5' });
}
