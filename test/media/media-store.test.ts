/**
 * The MediaStore contract, run against each implementation: the local disk, and S3 (against an
 * s3rver the test starts on loopback): content addressed by SHA-256, durable before `put`
 * resolves, byte ranges, listing for the orphan sweep, and a failed write leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { DiskMediaStore } from '../../src/media/disk-store.js';
import type { MediaStore } from '../../src/media/media-store.js';
import { S3MediaStore } from '../../src/media/s3-store.js';
import { startS3, type TestS3 } from './s3-helpers.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'hearth-store-'));
  dirs.push(d);
  return d;
};
let s3: TestS3 | undefined;
after(async () => {
  await s3?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const implementations: { name: string; make(): Promise<{ store: MediaStore; leftovers(): string[] }> }[] = [
  {
    name: 'DiskMediaStore',
    make: async () => {
      const root = tempDir();
      return { store: new DiskMediaStore(root), leftovers: () => readdirSync(join(root, 'tmp')) };
    },
  },
  {
    name: 'S3MediaStore',
    make: async () => {
      s3 = await startS3();
      const staging = tempDir();
      const store = new S3MediaStore(s3.settings, staging);
      return { store, leftovers: () => readdirSync(staging) };
    },
  },
];

for (const impl of implementations) {
  describe(`MediaStore contract: ${impl.name}`, () => {
    let store: MediaStore;
    let leftovers: () => string[];
    before(async () => {
      ({ store, leftovers } = await impl.make());
    });
    after(async () => {
      if (store instanceof S3MediaStore) await store.close();
    });

    it('put answers the SHA-256 and size; open gives the bytes back', async () => {
      const bytes = Buffer.from('hello media store');
      const stored = await store.put(Readable.from([bytes.subarray(0, 5), bytes.subarray(5)]));
      assert.equal(stored.sha256, createHash('sha256').update(bytes).digest('hex'));
      assert.equal(stored.size, bytes.length);
      assert.ok(await store.has(stored.sha256));
      const back = await store.open(stored.sha256);
      assert.ok(back);
      assert.ok((await buffer(back)).equals(bytes));
    });

    it('the same bytes twice are one entry; delete removes it; absent content is undefined', async () => {
      const a = await store.put(Readable.from([Buffer.from('twice')]));
      const b = await store.put(Readable.from([Buffer.from('twice')]));
      assert.equal(a.sha256, b.sha256);
      await store.delete(a.sha256);
      assert.equal(await store.has(a.sha256), false);
      assert.equal(await store.open(a.sha256), undefined);
      await store.delete(a.sha256);
    });

    it('a stream that fails midway stores nothing and leaves no partial file', async () => {
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(1000, 1));
          this.destroy(new Error('client went away'));
        },
      });
      await assert.rejects(store.put(failing), /client went away/);
      assert.deepEqual(leftovers(), []);
    });

    it('a byte range reads just those bytes, both ends included', async () => {
      const bytes = Buffer.from('0123456789abcdef');
      const stored = await store.put(Readable.from([bytes]));
      const part = await store.open(stored.sha256, { start: 3, end: 6 });
      assert.ok(part);
      assert.equal((await buffer(part)).toString(), '3456');
    });

    it('a large stream goes through whole, and list shows what is stored with its time', async () => {
      const big = Buffer.alloc(3 * 1024 * 1024 + 17);
      for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
      const t0 = Date.now();
      const stored = await store.put(Readable.from([big.subarray(0, 1_000_000), big.subarray(1_000_000)]));
      assert.equal(stored.size, big.length);
      assert.ok((await buffer((await store.open(stored.sha256))!)).equals(big));
      const listed = [];
      for await (const e of store.list()) listed.push(e);
      const entry = listed.find((e) => e.sha256 === stored.sha256);
      assert.ok(entry, 'the new content is listed');
      assert.ok(Math.abs(entry.modifiedTs - t0) < 60_000, `modified ${entry.modifiedTs} near ${t0}`);
      await store.delete(stored.sha256);
      const after = [];
      for await (const e of store.list()) after.push(e.sha256);
      assert.ok(!after.includes(stored.sha256));
    });
  });
}
