import type { Context } from '../context.js';
import { isValidRoomAlias, isValidRoomId, serverNameOf } from '../core/ids.js';
import { forbidden, invalidParam, MatrixError, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { deleteAlias, insertAlias, moveAliases, selectAlias, selectAliasesOfRoom } from './aliases-table.js';
import { listPublicRooms, type PublicRoomsQuery, type PublicRoomsResponse } from './public-rooms.js';
import { isPublished, publishRoom, unpublishRoom } from './published-rooms-table.js';
import { RemoteSpaces } from './remote-spaces.js';
import { RemoteUsersConsumer } from './remote-users-consumer.js';

export type DirectoryVisibility = 'public' | 'private';

/** Room aliases, the published room directory and the user directory. */
export class DirectoryService {
  /** Spaces and rooms this server is not in, as servers that are describe them. */
  readonly remoteSpaces: RemoteSpaces;
  /** Keeps the user directory's remote users up with the rooms' current state. */
  readonly remoteUsers: RemoteUsersConsumer;

  constructor(private readonly ctx: Context) {
    this.remoteUsers = new RemoteUsersConsumer(ctx);
    this.remoteSpaces = new RemoteSpaces({
      ask: (server, roomId, suggestedOnly) => ctx.services.federation.queries.hierarchy(server, roomId, suggestedOnly),
      serverName: ctx.serverName,
      logger: ctx.logger,
    });
  }

  async start(): Promise<void> {
    this.remoteUsers.start();
  }

  async stop(): Promise<void> {
    await this.remoteUsers.stop();
  }

  /** Validates an alias this server may host: the grammar, and our server name. */
  assertLocalAlias(alias: string): void {
    if (!isValidRoomAlias(alias)) throw invalidParam(`Invalid room alias: ${alias}`);
    if (serverNameOf(alias) !== this.ctx.serverName) {
      throw invalidParam(`Room alias ${alias} is not on this server (${this.ctx.serverName})`);
    }
  }

  /**
   * The room an alias points to and servers that can join it (this server
   * first, then the servers of joined members). Null when unknown. An alias
   * of another server is asked of that server (server-server query.yaml).
   */
  async resolveAlias(alias: string): Promise<{ roomId: string; servers: string[] } | null> {
    if (!isValidRoomAlias(alias)) throw invalidParam(`Invalid room alias: ${alias}`);
    const server = serverNameOf(alias)!;
    if (server !== this.ctx.serverName && this.ctx.config.federation.enabled) {
      return this.ctx.services.federation.queries.roomAlias(server, alias);
    }
    const row = await selectAlias(this.ctx.db, alias);
    if (!row) return null;
    const servers = [this.ctx.serverName];
    for (const u of await this.ctx.services.rooms.getJoinedMembers(row.room_id)) {
      const s = serverNameOf(u);
      if (s !== undefined && !servers.includes(s)) servers.push(s);
    }
    return { roomId: row.room_id, servers };
  }

  async isAliasTaken(alias: string): Promise<boolean> {
    return (await selectAlias(this.ctx.db, alias)) !== undefined;
  }

  /**
   * Maps a local alias to a room. Throws 409 M_UNKNOWN when taken (the
   * createRoom path turns that into M_ROOM_IN_USE), 404 for an unknown room.
   */
  async createAlias(alias: string, roomId: string, creator: string): Promise<void> {
    this.assertLocalAlias(alias);
    if (!isValidRoomId(roomId)) throw invalidParam(`Invalid room id: ${roomId}`);
    if (!(await this.ctx.services.rooms.roomExists(roomId))) throw notFound(`Room ${roomId} is not known to this server`);
    const ok = await insertAlias(this.ctx.db, { room_alias: alias, room_id: roomId, creator, created_ts: this.ctx.now() });
    if (!ok) throw new MatrixError(409, 'M_UNKNOWN', `Room alias ${alias} already exists.`);
  }

  /** Deletes an alias: its creator, a server admin, or a room member allowed to change m.room.canonical_alias. */
  async deleteAlias(alias: string, requester: Requester): Promise<void> {
    if (!isValidRoomAlias(alias)) throw invalidParam(`Invalid room alias: ${alias}`);
    const row = await selectAlias(this.ctx.db, alias);
    if (!row) throw notFound(`Room alias ${alias} not found`);
    if (row.creator !== requester.userId && !requester.isAdmin) {
      const allowed = await this.ctx.services.rooms.userCanSendState(row.room_id, requester.userId, 'm.room.canonical_alias');
      if (!allowed) throw forbidden('You may not delete this alias');
    }
    await deleteAlias(this.ctx.db, alias);
  }

  async getLocalAliases(roomId: string): Promise<string[]> {
    return selectAliasesOfRoom(this.ctx.db, roomId);
  }

  /**
   * A room upgrade (rooms/upgrade.ts): the old room's local aliases and its
   * place in the published directory go to the new room, in one transaction.
   */
  async moveToUpgradedRoom(from: string, to: string): Promise<void> {
    await this.ctx.db.transaction().execute(async (trx) => {
      await moveAliases(trx, from, to);
      if (await isPublished(trx, from)) {
        await unpublishRoom(trx, from);
        await publishRoom(trx, to, this.ctx.now());
      }
    });
  }

  async getVisibility(roomId: string): Promise<DirectoryVisibility> {
    return (await isPublished(this.ctx.db, roomId)) ? 'public' : 'private';
  }

  async setVisibility(roomId: string, visibility: DirectoryVisibility): Promise<void> {
    if (visibility === 'public') await publishRoom(this.ctx.db, roomId, this.ctx.now());
    else await unpublishRoom(this.ctx.db, roomId);
  }

  async listPublicRooms(q: PublicRoomsQuery): Promise<PublicRoomsResponse> {
    return listPublicRooms(this.ctx, q);
  }

  /** The published directory of `server`: this server's own, or asked of another (server-server public_rooms.yaml). */
  async listPublicRoomsOf(server: string | undefined, q: PublicRoomsQuery): Promise<PublicRoomsResponse> {
    if (server === undefined || server === '' || server === this.ctx.serverName) return listPublicRooms(this.ctx, q);
    if (!this.ctx.config.federation.enabled) throw notFound(`Federation is disabled: the room directory of ${server} cannot be read`);
    return this.ctx.services.federation.queries.publicRooms(server, q);
  }
}
