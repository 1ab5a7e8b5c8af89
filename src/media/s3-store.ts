/**
 * The MediaStore on S3-compatible storage, shared by every node of a cluster: one object per
 * content, keyed by its SHA-256. A put spools the stream to a local staging file while hashing
 * (the key is known only at the end, and S3 wants the length up front), then uploads it with
 * PutObject; S3 answers only once the object is durable, so the caller's row still follows its
 * bytes. Content already stored is uploaded again all the same: that renews its modification
 * time, so the orphan sweep (which spares recent objects) cannot delete it before the new row
 * that refers to it commits.
 *
 * The AWS SDK is loaded on first use: a server on local disk never loads it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ByteRange, MediaStore, StoredContent, StoredEntry } from './media-store.js';

export interface S3Settings {
  /** e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`; '' for AWS's default. */
  endpoint: string;
  bucket: string;
  region: string;
  access_key_id: string;
  secret_access_key: string;
  /** `endpoint/bucket/key` rather than `bucket.endpoint/key` (MinIO and most self-hosted servers). */
  force_path_style: boolean;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

type Sdk = typeof import('@aws-sdk/client-s3');

export class S3MediaStore implements MediaStore {
  private sdk: Promise<{ sdk: Sdk; client: S3Client }> | undefined;

  /** `staging` is a local folder for uploads in progress (cleared of `.part` files at start). */
  constructor(
    private readonly settings: S3Settings,
    private readonly staging: string,
  ) {}

  private connect(): Promise<{ sdk: Sdk; client: S3Client }> {
    this.sdk ??= import('@aws-sdk/client-s3').then((sdk) => {
      const s = this.settings;
      const client = new sdk.S3Client({
        region: s.region,
        ...(s.endpoint ? { endpoint: s.endpoint } : {}),
        forcePathStyle: s.force_path_style,
        credentials: { accessKeyId: s.access_key_id, secretAccessKey: s.secret_access_key },
        // Checksums only where S3 requires them: S3-compatible servers differ in what else they accept.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      return { sdk, client };
    });
    return this.sdk;
  }

  async close(): Promise<void> {
    if (this.sdk) (await this.sdk).client.destroy();
  }

  private keyOf(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return sha256;
  }

  async put(content: Readable): Promise<StoredContent> {
    await mkdir(this.staging, { recursive: true });
    const tmp = join(this.staging, `${Date.now()}-${randomBytes(8).toString('hex')}.part`);
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
      await fh.close();
      const sha256 = hash.digest('hex');
      const { sdk, client } = await this.connect();
      await client.send(
        new sdk.PutObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.keyOf(sha256),
          Body: createReadStream(tmp),
          ContentLength: size,
          ContentType: 'application/octet-stream',
        }),
      );
      return { sha256, size };
    } finally {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
    }
  }

  async open(sha256: string, range?: ByteRange): Promise<Readable | undefined> {
    const { sdk, client } = await this.connect();
    try {
      const res = await client.send(
        new sdk.GetObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.keyOf(sha256),
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      return res.Body as Readable;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async has(sha256: string): Promise<boolean> {
    const { sdk, client } = await this.connect();
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.keyOf(sha256) }));
      return true;
    } catch (e) {
      if (isMissing(e)) return false;
      throw e;
    }
  }

  async delete(sha256: string): Promise<void> {
    const { sdk, client } = await this.connect();
    await client.send(new sdk.DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.keyOf(sha256) }));
  }

  async *list(): AsyncIterable<StoredEntry> {
    const { sdk, client } = await this.connect();
    let token: string | undefined;
    do {
      const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.settings.bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        if (o.Key && SHA256_HEX.test(o.Key)) yield { sha256: o.Key, modifiedTs: o.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}

function isMissing(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata?.httpStatusCode === 404;
}
