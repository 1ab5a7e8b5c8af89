// The hot-path scenarios that run.js measures and compare.js measures across builds.
import { type BenchClient, percentile } from './client.js';

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
 * `creator` and joined by `member` just before, one sync after the other.
 */
export async function initialSyncsOf100Rooms(client: BenchClient, creator: string, member: string, syncs: number): Promise<number[]> {
  for (let i = 0; i < 100; i++) {
    const r = await client.ok<{ room_id: string }>('POST', '/_matrix/client/v3/createRoom', { name: `room ${i}`, preset: 'public_chat' }, creator);
    await client.ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(r.room_id)}`, {}, member);
    for (let m = 0; m < 20; m++) {
      await client.ok('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(r.room_id)}/send/m.room.message/i${i}-${m}`, { msgtype: 'm.text', body: `hello ${m}` }, creator);
    }
  }
  const times: number[] = [];
  for (let r = 0; r < syncs; r++) {
    const s = performance.now();
    const res = await client.ok<{ rooms: { join: Record<string, unknown> } }>('GET', '/_matrix/client/v3/sync', undefined, member);
    times.push(performance.now() - s);
    if (Object.keys(res.rooms.join).length < 100) throw new Error('initial sync is missing rooms');
  }
  return times;
}
