import type { Context } from '../context.js';
import type { JsonObject } from '../core/types.js';
import type { Requester } from '../http/requester.js';
import { searchRoomEvents, type RoomEventsCriteria } from './search.js';

/**
 * Server-side search (spec: modules/search.md). The index is written by the
 * rooms pipeline with each event (index-rows.ts, search-table.ts); this
 * answers POST /search from it.
 */
export class SearchService {
  constructor(private readonly ctx: Context) {}

  async search(requester: Requester, body: { search_categories: { room_events?: RoomEventsCriteria } }, nextBatch: string | undefined): Promise<JsonObject> {
    const categories: JsonObject = {};
    const criteria = body.search_categories.room_events;
    if (criteria) {
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
