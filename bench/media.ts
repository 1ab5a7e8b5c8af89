// `node dist/bench/media.js` (after a build): the media repository's figures over real HTTP on
// a fresh server process: upload and download throughput for 1 MB and 20 MB files, thumbnail
// time for a 12-megapixel JPEG, and the server's peak RSS while 4 clients upload 20 MB each.
// It runs once with media on local disk and once on S3 (an s3rver on loopback, in this
// process, so that its memory is not counted as the server's); `HEARTH_BENCH_MEDIA=disk` or
// `=s3` runs one of them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import sharp from 'sharp';
import { Pool } from 'undici';
import YAML from 'yaml';
import { generateConfigText } from '../src/config/load.js';
import type { S3Settings } from '../src/media/s3-store.js';
import { BenchClient, median, rssMb } from './client.js';
import { startServerProcess } from './server-process.js';

const MB = 1024 * 1024;

type Backend = 'disk' | 's3';

/** An s3rver on loopback with one bucket, and the `media.s3` settings that reach it. */
async function startS3(): Promise<{ settings: S3Settings; close(): Promise<void> }> {
  const directory = mkdtempSync(join(tmpdir(), 'hearth-bench-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: 'media', configs: [] }] });
  const addr = await server.run();
  return {
    settings: {
      endpoint: `http://127.0.0.1:${addr.port}`,
      bucket: 'media',
      region: 'us-east-1',
      access_key_id: 'S3RVER',
      secret_access_key: 'S3RVER',
      force_path_style: true,
    },
    close: async () => {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

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

async function run(backend: Backend, rows: string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-media-'));
  const s3 = backend === 's3' ? await startS3() : undefined;
  if (s3) {
    // A config file written before the first start, as an operator would, with the bucket in it.
    const cfg = YAML.parse(generateConfigText({})) as { media: Record<string, unknown> };
    cfg.media.s3 = s3.settings;
    writeFileSync(join(dir, 'hearth.yaml'), YAML.stringify(cfg), { mode: 0o600 });
  }
  const server = await startServerProcess({ dir });
  const { proc, url } = server;
  const client = new BenchClient(url, 4);
  const pool = new Pool(url, { connections: 8, keepAliveTimeout: 60_000 });
  const record = (name: string, value: string) => {
    rows.push(`| ${backend} | ${name} | ${value} |`);
    console.error(`  ${backend}: ${name}: ${value}`);
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
    await s3?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const only = process.env.HEARTH_BENCH_MEDIA;
  if (only && only !== 'disk' && only !== 's3') throw new Error('HEARTH_BENCH_MEDIA must be "disk" or "s3"');
  const rows: string[] = [];
  for (const backend of ['disk', 's3'] as const) if (!only || only === backend) await run(backend, rows);
  console.log(
    `\nHearth media benchmark, ${new Date().toISOString().slice(0, 10)}, node ${process.version}\n\n| store | measure | value |\n| --- | --- | --- |\n${rows.join('\n')}`,
  );
}

await main();
