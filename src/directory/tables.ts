/** Row types of the directory domain's tables (see migrations.ts). */

declare module '../db/schema.js' {
  interface Tables {
    room_aliases: RoomAliasRow;
    published_rooms: PublishedRoomRow;
    user_directory_remote: UserDirectoryRemoteRow;
    user_directory_local: UserDirectoryLocalRow;
    user_directory_rooms: UserDirectoryRoomRow;
    user_directory_position: UserDirectoryPositionRow;
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

/**
 * A user of another server joined to a room this server has the state of, with the profile of
 * their member event there. `search_text` is `searchText()` of the user id and display name
 * (accounts/search-text.ts), the same form local profiles are searched by.
 */
export interface UserDirectoryRemoteRow {
  room_id: string;
  user_id: string;
  /** The member event: a redaction of it clears the profile. */
  event_id: string;
  display_name: string | null;
  avatar_url: string | null;
  search_text: string;
  /** Position of the member event's state change: among several rooms, the newest profile wins. */
  stream_pos: number;
}

/** A user of this server joined to a room: which rooms a searcher shares, and whether this server is in a room. */
export interface UserDirectoryLocalRow {
  room_id: string;
  user_id: string;
}

/** The two state values that open a room's members to every searcher (null when the room has no such event). */
export interface UserDirectoryRoomRow {
  room_id: string;
  join_rule: string | null;
  history_visibility: string | null;
}

/** How far along the current-state stream the three tables above are (one row, id 1). */
export interface UserDirectoryPositionRow {
  id: number;
  stream_pos: number;
}
