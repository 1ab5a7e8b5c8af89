/** Row types of the directory domain's tables (see migrations.ts). */

declare module '../db/schema.js' {
  interface Tables {
    room_aliases: RoomAliasRow;
    published_rooms: PublishedRoomRow;
  }
}

export interface RoomAliasRow {
  room_alias: string;
  room_id: string;
  /** Who created the mapping: may delete it (with room admins and server admins). */
  creator: string;
  created_ts: number;
}

/** Rooms whose directory visibility is `public`. */
export interface PublishedRoomRow {
  room_id: string;
  published_ts: number;
}
