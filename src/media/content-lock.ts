/**
 * Stored bytes are shared by every row with the same content hash, so two things must not
 * interleave: committing a row for bytes just stored, and deleting bytes that no row refers to
 * (after the last row that shared them was deleted, or an orphan sweep). Left to race, the
 * deletion sees no row, the new row commits, the bytes go: a row without its file. Both run
 * under one lock per hash (db/row-lock.ts): a row's transaction first checks, under the lock,
 * that its bytes are still stored; a deletion checks, under the lock, that no row refers to the
 * bytes and deletes them before the lock is released.
 */
import { lockForUpdate } from '../db/row-lock.js';
import type { Db, Dialect, Tx } from '../db/schema.js';
import { MediaError } from './errors.js';
import { contentIsReferenced } from './local-media-table.js';
import type { MediaStore } from './media-store.js';

const LOCK_SPACE = 'media_content';

export class ContentLock {
  constructor(
    private readonly db: Db,
    private readonly dialect: Dialect,
    private readonly store: MediaStore,
  ) {}

  /** Runs `write` in a transaction once the bytes `sha256` are known to be stored; `content_lost` if a deletion took them meanwhile. */
  async commit<T>(sha256: string, write: (trx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      await lockForUpdate(trx, this.dialect, LOCK_SPACE, sha256);
      if (!(await this.store.has(sha256))) throw new MediaError('content_lost', 'The stored content was deleted while this request was being saved; try again');
      return write(trx);
    });
  }

  /** Deletes the bytes `sha256` unless a row refers to them; answers whether it did. */
  async dropIfUnreferenced(sha256: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await lockForUpdate(trx, this.dialect, LOCK_SPACE, sha256);
      if (await contentIsReferenced(trx, sha256)) return false;
      await this.store.delete(sha256);
      return true;
    });
  }
}
