import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import type { Requester } from '../http/requester.js';
import { SearchIndexer } from './indexer.js';
import { searchRoomEvents, type RoomEventsCriteria } from './search.js';

/**
 * Server-side search (spec: modules/search.md): the indexer that follows the
 * events stream, and POST /search answered from the index once it has caught
 * up.
 */
export class SearchService {
  private readonly indexer: SearchIndexer;

  constructor(private readonly ctx: Context) {
    this.indexer = new SearchIndexer(ctx);
  }

  async start(): Promise<void> {
    this.indexer.start();
  }

  async stop(): Promise<void> {
    await this.indexer.stop();
  }

  async search(requester: Requester, body: { search_categories: { room_events?: RoomEventsCriteria } }, nextBatch: string | undefined): Promise<JsonObject> {
    const categories: JsonObject = {};
    const criteria = body.search_categories.room_events;
    if (criteria) {
      await this.indexer.catchUp();
      const rooms = this.ctx.services.rooms;
      categories.room_events = await searchRoomEvents(
        {
          db: this.ctx.db,
          dialect: this.ctx.dialect,
          core: rooms.core,
          memberships: (userId) => rooms.getMemberships(userId),
          currentState: (roomId) => rooms.getCurrentState(roomId),
        },
        requester,
        criteria,
        nextBatch,
      );
    }
    return { search_categories: categories };
  }
}
