import type { Context } from '../context.js';
import type { Requester } from '../http/requester.js';
import type { Viewer } from '../rooms/events/client-format.js';
import { Aggregator } from './aggregations.js';
import { readRelations, type RelationsParams } from './read-relations.js';
import { checkRelatedSend } from './send-rules.js';
import { readThreadUpdates, type ThreadWindow } from './thread-updates.js';
import { readThreads, type ThreadsParams } from './threads.js';

/**
 * Event relationships (spec: client-server "Forming relationships between
 * events", threading, edits, references): /relations and /threads, bundled
 * aggregations on every event the rooms domain formats for a client, the
 * threads updated in a window of the stream (MSC4360), and the
 * checks on a client's related sends. The index itself is written by the
 * rooms pipeline with each event (index-rows.ts).
 */
export class RelationsService {
  private readonly ignoredUsers: (userId: string) => Promise<Set<string>>;

  constructor(private readonly ctx: Context) {
    const core = ctx.services.rooms.core;
    this.ignoredUsers = (userId) => ctx.services.sync.accountData.ignoredUsers(userId);
    core.useBundler(new Aggregator(ctx.db, core, this.ignoredUsers));
    core.useSendRule((roomId, sender, type, content) => checkRelatedSend(ctx.db, core, roomId, sender, type, content));
  }

  relations(requester: Requester, roomId: string, eventId: string, p: RelationsParams) {
    return readRelations(this.ctx.services.rooms.core, requester, roomId, eventId, p);
  }

  threads(requester: Requester, roomId: string, p: ThreadsParams) {
    return readThreads(this.ctx.services.rooms.core, this.ignoredUsers, requester, roomId, p);
  }

  threadUpdates(viewer: Viewer, w: ThreadWindow) {
    return readThreadUpdates(this.ctx.services.rooms.core, this.ignoredUsers, viewer, w);
  }
}
