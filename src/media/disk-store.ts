/**
 * The MediaStore on local disk: `<root>/ab/cd/<sha256>`. A put streams into a temporary
 * file in `<root>/tmp` while hashing, fsyncs it, renames it into place and fsyncs the
 * folder, so the file is complete and durable before the caller commits its row.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteRange, MediaStore, StoredContent, StoredEntry } from './media-store.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;

export class DiskMediaStore implements MediaStore {
  constructor(private readonly root: string) {}

  private dirOf(sha256: string): string {
    return join(this.root, sha256.slice(0, 2), sha256.slice(2, 4));
  }

  private pathOf(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return join(this.dirOf(sha256), sha256);
  }

  async put(content: Readable): Promise<StoredContent> {
    // The final folder is known only once the hash is: write under a staging folder on the same
    // file system, then rename (atomic within one file system).
    const staging = join(this.root, 'tmp');
    await mkdir(staging, { recursive: true });
    const tmp = join(staging, `${Date.now()}-${randomBytes(8).toString('hex')}.part`);
    const hash = createHash('sha256');
    let size = 0;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          fh.write(chunk).then(() => done(), done);
        },
      });
      await pipeline(content, counter, sink);
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw e;
    }
    await fh.close();
    const sha256 = hash.digest('hex');
    const dir = this.dirOf(sha256);
    await mkdir(dir, { recursive: true });
    await rename(tmp, join(dir, sha256));
    await syncDir(dir);
    return { sha256, size };
  }

  async open(sha256: string, range?: ByteRange): Promise<Readable | undefined> {
    const path = this.pathOf(sha256);
    // Open first so that a missing file is known before any byte is promised to a client.
    const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (!fh) return undefined;
    return fh.createReadStream({ autoClose: true, highWaterMark: 256 * 1024, start: range?.start, end: range?.end });
  }

  async has(sha256: string): Promise<boolean> {
    return stat(this.pathOf(sha256)).then(
      () => true,
      () => false,
    );
  }

  async delete(sha256: string): Promise<void> {
    await unlink(this.pathOf(sha256)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  async *list(): AsyncIterable<StoredEntry> {
    const names = (dir: string) => readdir(dir).catch(() => [] as string[]);
    for (const a of await names(this.root)) {
      if (!/^[0-9a-f]{2}$/.test(a)) continue;
      for (const b of await names(join(this.root, a))) {
        for (const sha256 of await names(join(this.root, a, b))) {
          if (!SHA256_HEX.test(sha256)) continue;
          const info = await stat(join(this.root, a, b, sha256)).catch(() => undefined);
          if (info) yield { sha256, modifiedTs: info.mtimeMs };
        }
      }
    }
  }
}

/** Makes a rename durable: the new directory entry is on disk once this resolves. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
