/**
 * Keeping the media store in bounds: other servers' media not served for
 * `media.remote_cache_lifetime_ms` is dropped from the cache (it is fetched again if asked
 * for), this server's media not served for `media.local_lifetime_ms` (off by default) is
 * deleted, stored files that no row refers to are deleted once older than `media.orphan_grace_ms`
 * (a crash between a file's write and its row's commit leaves such files; the grace period
 * keeps the sweep off uploads in progress), and admins purge local media by uploader, by room
 * or by age. Bytes are deleted only when no row of any kind still refers to them.
 */
import type { Logger } from 'pino';
import type { Db } from '../db/schema.js';
import type { RoomsService } from '../rooms/service.js';
import { MediaError } from './errors.js';
import type { ContentLock } from './content-lock.js';
import { selectExistingMediaIds, selectMediaIdsBefore, selectMediaIdsNotServedSince, selectMediaIdsOfUser } from './local-media-table.js';
import type { MediaStore } from './media-store.js';
import { deleteRemoteMedia, deleteStaleRemoteThumbnails, selectStaleRemoteMedia } from './remote-media-table.js';

const PAGE = 500;
const MXC = /^mxc:\/\/([^/]+)\/([A-Za-z0-9_-]+)$/;

export interface RetentionDeps {
  db: Db;
  store: MediaStore;
  /** Deletes bytes only when no row refers to them, serialised with rows being committed. */
  content: ContentLock;
  serverName: string;
  logger: Logger;
  now(): number;
  /** Reads the events of a room, for the purge by room. */
  rooms: Pick<RoomsService, 'storedEventsOfRoom'>;
  /** Deletes one local media item with its thumbnails (MediaService.delete). */
  deleteLocal(mediaId: string): Promise<void>;
  remoteLifetimeMs: number | null;
  /** Local media not served for this long is deleted; null keeps it. */
  localLifetimeMs: number | null;
  orphanGraceMs: number;
  intervalMs: number;
}

export class MediaRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly deps: RetentionDeps) {}

  /** Runs the sweep every `intervalMs` (first after one interval), never two at once. */
  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.deps.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Remote cache expiry, then the orphan sweep. */
  sweep(): Promise<void> {
    this.running ??= (async () => {
      try {
        const lifetime = this.deps.remoteLifetimeMs;
        const expired = lifetime === null ? 0 : await this.purgeRemoteCache(this.deps.now() - lifetime);
        const local = this.deps.localLifetimeMs;
        const unused = local === null ? 0 : (await this.purgeNotServedSince(this.deps.now() - local)).length;
        const orphans = await this.sweepOrphans();
        if (expired + unused + orphans > 0) this.deps.logger.info({ expired, unused, orphans }, 'media retention sweep');
      } catch (err) {
        this.deps.logger.warn({ err }, 'media retention sweep failed');
      }
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Drops cached remote media last served before `before` (and remote thumbnails fetched before it); answers how many items. */
  async purgeRemoteCache(before: number): Promise<number> {
    let count = 0;
    for (;;) {
      const stale = await selectStaleRemoteMedia(this.deps.db, before, PAGE);
      for (const m of stale) {
        const hashes = await this.deps.db.transaction().execute((trx) => deleteRemoteMedia(trx, m.server_name, m.media_id));
        await this.dropUnreferenced(hashes);
      }
      count += stale.length;
      if (stale.length < PAGE) break;
    }
    await this.dropUnreferenced(await deleteStaleRemoteThumbnails(this.deps.db, before));
    return count;
  }

  /** Deletes stored files older than the grace period that nothing refers to; answers how many. */
  async sweepOrphans(): Promise<number> {
    const cutoff = this.deps.now() - this.deps.orphanGraceMs;
    let count = 0;
    for await (const entry of this.deps.store.list()) {
      if (entry.modifiedTs >= cutoff) continue;
      if (await this.deps.content.dropIfUnreferenced(entry.sha256)) count++;
    }
    return count;
  }

  /** Deletes every local media item `userId` uploaded; answers their ids. */
  async purgeUser(userId: string): Promise<string[]> {
    return this.deleteAll(await selectMediaIdsOfUser(this.deps.db, userId));
  }

  /** Deletes local media last served (or uploaded) before `before`; answers their ids. */
  async purgeNotServedSince(before: number): Promise<string[]> {
    const deleted: string[] = [];
    for (;;) {
      const ids = await selectMediaIdsNotServedSince(this.deps.db, before, PAGE);
      deleted.push(...(await this.deleteAll(ids)));
      if (ids.length < PAGE) return deleted;
    }
  }

  /** Deletes local media uploaded before `before` (larger than `sizeGt` bytes); answers their ids. */
  async purgeOlderThan(before: number, sizeGt: number): Promise<string[]> {
    return this.deleteAll(await selectMediaIdsBefore(this.deps.db, before, sizeGt));
  }

  /** The mxc URIs the room's events refer to, this server's and other servers'. */
  async mediaOfRoom(roomId: string): Promise<{ local: string[]; remote: string[] }> {
    const found = new Set<string>();
    let after: number | undefined;
    for (;;) {
      const events = await this.deps.rooms.storedEventsOfRoom(roomId, after, PAGE);
      for (const ev of events) collectMxc(ev.pdu.content, found);
      if (events.length < PAGE) break;
      after = events[events.length - 1]!.streamPos!;
    }
    const local: string[] = [];
    const remote: string[] = [];
    for (const uri of found) (MXC.exec(uri)![1] === this.deps.serverName ? local : remote).push(uri);
    return { local: local.sort(), remote: remote.sort() };
  }

  /** Deletes this server's media that the room's events refer to, and drops cached copies of other servers' from it; answers the local ids deleted. */
  async purgeRoom(roomId: string): Promise<string[]> {
    const { local, remote } = await this.mediaOfRoom(roomId);
    for (const uri of remote) {
      const [, server, id] = MXC.exec(uri)!;
      const hashes = await this.deps.db.transaction().execute((trx) => deleteRemoteMedia(trx, server!, id!));
      await this.dropUnreferenced(hashes);
    }
    const ids = await selectExistingMediaIds(this.deps.db, local.map((u) => MXC.exec(u)![2]!));
    return this.deleteAll(ids);
  }

  private async deleteAll(ids: string[]): Promise<string[]> {
    const deleted: string[] = [];
    for (const id of ids) {
      try {
        await this.deps.deleteLocal(id);
        deleted.push(id);
      } catch (e) {
        // Deleted meanwhile by another request: nothing left to do for it.
        if (!(e instanceof MediaError && e.kind === 'not_found')) throw e;
      }
    }
    return deleted;
  }

  private async dropUnreferenced(hashes: string[]): Promise<void> {
    for (const sha of new Set(hashes)) await this.deps.content.dropIfUnreferenced(sha);
  }
}

/** Every mxc URI among the string values of an event's content (url, info.thumbnail_url, file.url, avatar_url, ...). */
function collectMxc(value: unknown, into: Set<string>, depth = 0): void {
  if (depth > 8 || value === null || value === undefined) return;
  if (typeof value === 'string') {
    if (MXC.test(value)) into.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectMxc(v, into, depth + 1);
  } else if (typeof value === 'object') {
    for (const v of Object.values(value)) collectMxc(v, into, depth + 1);
  }
}
