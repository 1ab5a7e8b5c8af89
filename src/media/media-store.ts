/**
 * Where media bytes live, addressed by their SHA-256: the local disk on one node
 * (disk-store.ts), or S3-compatible storage that every node of a cluster shares (s3-store.ts). The same bytes uploaded
 * twice are stored once; the database rows say who uploaded what.
 *
 * `put` returns only once the bytes are durable, so a caller that commits its database
 * row afterwards never leaves a row without its content (a crash in between leaves at
 * most an unreferenced file). Deleting bytes that rows share is serialised with those
 * commits (content-lock.ts).
 */
import type { Readable } from 'node:stream';

export interface StoredContent {
  /** Lowercase hex SHA-256 of the bytes. */
  sha256: string;
  size: number;
}

/** Inclusive byte offsets, as in an HTTP Range. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface MediaStore {
  /** Consumes `content` and stores it durably. Rejects with the stream's error if it fails. */
  put(content: Readable): Promise<StoredContent>;
  /** The bytes (from `range.start` to `range.end` inclusive when given), or undefined when absent. */
  open(sha256: string, range?: ByteRange): Promise<Readable | undefined>;
  /** Whether the bytes are present. */
  has(sha256: string): Promise<boolean>;
  /** Removes the bytes; absent bytes are not an error. */
  delete(sha256: string): Promise<void>;
  /** Every stored content, with when it was written (ms since 1970): for the orphan sweep. */
  list(): AsyncIterable<StoredEntry>;
}

export interface StoredEntry {
  sha256: string;
  modifiedTs: number;
}
