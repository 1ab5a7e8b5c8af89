// `node dist/bench/media.js` (after a build): the media repository's figures over real HTTP on
// a fresh server process: upload and download throughput for 1 MB and 20 MB files, thumbnail
// time for a 12-megapixel JPEG, and the server's peak RSS while 4 clients upload 20 MB each.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Pool } from 'undici';
import YAML from 'yaml';
import { BenchClient, median, rssMb } from './client.js';
import { startServerProcess } from './server-process.js';

const MB = 1024 * 1024;


function randomish(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-media-'));
  const server = await startServerProcess({ dir });
  const { proc, url } = server;
  const client = new BenchClient(url, 4);
  const pool = new Pool(url, { connections: 8, keepAliveTimeout: 60_000 });
  const rows: string[] = [];
  const record = (name: string, value: string) => {
    rows.push(`| ${name} | ${value} |`);
    console.error(`  ${name}: ${value}`);
  };
  try {
    const secret = (YAML.parse(readFileSync(join(dir, 'hearth.yaml'), 'utf8')) as { registration_shared_secret: string }).registration_shared_secret;
    const { token } = await client.registerUser('bench', secret);
    const auth = { authorization: `Bearer ${token}` };

    const uploadOnce = async (body: Buffer, type = 'application/octet-stream'): Promise<string> => {
      const res = await pool.request({ method: 'POST', path: '/_matrix/media/v3/upload', headers: { ...auth, 'content-type': type }, body });
      const json = (await res.body.json()) as { content_uri: string };
      if (res.statusCode !== 200) throw new Error(`upload: ${res.statusCode} ${JSON.stringify(json)}`);
      return json.content_uri.slice('mxc://'.length);
    };
    const download = async (id: string, path = 'download'): Promise<number> => {
      const res = await pool.request({ method: 'GET', path: `/_matrix/client/v1/media/${path}/${id}`, headers: auth });
      let n = 0;
      for await (const chunk of res.body) n += (chunk as Buffer).length;
      if (res.statusCode !== 200) throw new Error(`download: ${res.statusCode}`);
      return n;
    };

    for (const [size, count] of [[1 * MB, 20], [20 * MB, 5]] as const) {
      const bodies = Array.from({ length: count }, (_, i) => randomish(size, i + size));
      const up: number[] = [];
      const down: number[] = [];
      const ids: string[] = [];
      for (const b of bodies) {
        const t = performance.now();
        ids.push(await uploadOnce(b));
        up.push(size / MB / ((performance.now() - t) / 1000));
      }
      for (const id of ids) {
        const t = performance.now();
        await download(id);
        down.push(size / MB / ((performance.now() - t) / 1000));
      }
      record(`upload ${size / MB} MB (median of ${count})`, `${median(up).toFixed(0)} MB/s`);
      record(`download ${size / MB} MB (median of ${count})`, `${median(down).toFixed(0)} MB/s`);
    }

    const before = rssMb(proc.pid!);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(proc.pid!))), 10);
    const big = Array.from({ length: 4 }, (_, i) => randomish(20 * MB, 100 + i));
    const t0 = performance.now();
    await Promise.all(big.map((b) => uploadOnce(b)));
    const secs = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    record('4 concurrent 20 MB uploads', `${((4 * 20) / secs).toFixed(0)} MB/s together`);
    record('server RSS before / peak during them', `${before.toFixed(0)} MB / ${peak.toFixed(0)} MB`);
    const photo = await sharp({ create: { width: 4000, height: 3000, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
      .jpeg({ quality: 85 })
      .toBuffer();
    const id = await uploadOnce(photo, 'image/jpeg');
    let t = performance.now();
    await download(`${id}?width=96&height=96&method=crop`, 'thumbnail');
    record(`12 MP JPEG (${(photo.length / MB).toFixed(1)} MB): first thumbnail (waits for the 5 standard sizes)`, `${(performance.now() - t).toFixed(0)} ms`);
    t = performance.now();
    await download(`${id}?width=96&height=96&method=crop`, 'thumbnail');
    record('the same thumbnail again (stored)', `${(performance.now() - t).toFixed(1)} ms`);
    t = performance.now();
    await download(`${id}?width=1200&height=1200&method=scale`, 'thumbnail');
    record('12 MP JPEG: a new size on demand (1200x1200 scale)', `${(performance.now() - t).toFixed(0)} ms`);

    record('server RSS after the thumbnails', `${rssMb(proc.pid!).toFixed(0)} MB`);
  } finally {
    await pool.close();
    await client.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nHearth media benchmark, ${new Date().toISOString().slice(0, 10)}, node ${process.version}\n\n| measure | value |\n| --- | --- |\n${rows.join('\n')}`);
}

await main();
