/**
 * The MediaStore contract, run against each implementation (the local disk today; S3 will join
 * the list): content addressed by SHA-256, durable before `put` resolves, and a failed write
 * leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, describe, it } from 'node:test';
import { DiskMediaStore } from '../../src/media/disk-store.js';
import type { MediaStore } from '../../src/media/media-store.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const implementations: { name: string; make(): MediaStore; leftovers(): string[] }[] = [
  (() => {
    const root = mkdtempSync(join(tmpdir(), 'hearth-store-'));
    dirs.push(root);
    return {
      name: 'DiskMediaStore',
      make: () => new DiskMediaStore(root),
      leftovers: () => readdirSync(join(root, 'tmp')),
    };
  })(),
];

for (const impl of implementations) {
  describe(`MediaStore contract: ${impl.name}`, () => {
    const store = impl.make();

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
      assert.deepEqual(impl.leftovers(), []);
    });
  });
}
