/**
 * Server-side key backup endpoints (key_backup.yaml): `/room_keys/version` to create, read,
 * update and delete backup versions, and `/room_keys/keys` at three levels (all rooms, one
 * room, one session) to store, read and delete keys. The logic is in key-backup.ts.
 */
import type { Context } from '../context.js';
import { MatrixError, invalidParam, missingParam, notFound } from '../http/errors.js';
import type { Route } from '../http/router.js';
import { BACKUP_ALGORITHMS, KeyBackupError, KeyBackupService, type KeyBackupData, type RoomKeys } from './key-backup.js';

/** KeyBackupData (definitions/key_backup_data.yaml); the bounds keep the numbers storable. */
const KEY_BACKUP_DATA = {
  type: 'object',
  required: ['first_message_index', 'forwarded_count', 'is_verified', 'session_data'],
  properties: {
    first_message_index: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    forwarded_count: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    is_verified: { type: 'boolean' },
    session_data: { type: 'object' },
  },
};

/** RoomKeyBackup (definitions/room_key_backup.yaml). */
const ROOM_KEY_BACKUP = {
  type: 'object',
  required: ['sessions'],
  properties: { sessions: { type: 'object', additionalProperties: KEY_BACKUP_DATA } },
};

const VERSION_BODY = {
  type: 'object',
  required: ['algorithm', 'auth_data'],
  properties: {
    algorithm: { type: 'string', enum: BACKUP_ALGORITHMS },
    auth_data: { type: 'object' },
    version: { type: 'string' },
  },
};

const VERSION_QUERY = { querystring: { type: 'object', properties: { version: { type: 'string' } } } };

function toHttpError(e: unknown): unknown {
  if (!(e instanceof KeyBackupError)) return e;
  switch (e.kind) {
    case 'no_backup':
    case 'unknown_version':
    case 'no_key':
      return notFound(e.message);
    case 'wrong_version':
      return new MatrixError(403, 'M_WRONG_ROOM_KEYS_VERSION', e.message, { current_version: e.currentVersion });
    case 'invalid':
      return invalidParam(e.message);
  }
}

/** Runs a service call, answering its domain errors as Matrix errors. */
async function answer<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw toHttpError(e);
  }
}

function versionParam(query: { version?: unknown }): string {
  if (typeof query.version !== 'string') throw missingParam('The version query parameter is required');
  return query.version;
}

export function keyBackupRoutes(ctx: Context): Route[] {
  let service: KeyBackupService | undefined;
  const backups = () => (service ??= new KeyBackupService(ctx.db, ctx.dialect));

  return [
    // ---- versions ----
    {
      method: 'POST',
      path: '/room_keys/version',
      schema: { body: VERSION_BODY },
      handler: async (req) => ({
        version: await answer(() => backups().createVersion(req.requester.userId, req.body.algorithm, req.body.auth_data)),
      }),
    },
    {
      method: 'GET',
      path: '/room_keys/version',
      handler: (req) => answer(() => backups().getVersionInfo(req.requester.userId)),
    },
    {
      method: 'GET',
      path: '/room_keys/version/:version',
      handler: (req) => answer(() => backups().getVersionInfo(req.requester.userId, req.params.version)),
    },
    {
      method: 'PUT',
      path: '/room_keys/version/:version',
      schema: { body: VERSION_BODY },
      handler: async (req) => {
        await answer(() => backups().updateVersion(req.requester.userId, req.params.version, req.body));
        return {};
      },
    },
    {
      method: 'DELETE',
      path: '/room_keys/version/:version',
      handler: async (req) => {
        await answer(() => backups().deleteVersion(req.requester.userId, req.params.version));
        return {};
      },
    },

    // ---- keys: all rooms ----
    {
      method: 'PUT',
      path: '/room_keys/keys',
      schema: {
        ...VERSION_QUERY,
        body: { type: 'object', required: ['rooms'], properties: { rooms: { type: 'object', additionalProperties: ROOM_KEY_BACKUP } } },
      },
      handler: (req) => {
        const rooms: RoomKeys = {};
        for (const [roomId, room] of Object.entries(req.body.rooms as Record<string, { sessions: Record<string, KeyBackupData> }>)) {
          rooms[roomId] = room.sessions;
        }
        return answer(() => backups().uploadKeys(req.requester.userId, versionParam(req.query), rooms));
      },
    },
    {
      method: 'GET',
      path: '/room_keys/keys',
      schema: VERSION_QUERY,
      handler: async (req) => {
        const rooms = await answer(() => backups().getKeys(req.requester.userId, versionParam(req.query)));
        return { rooms: Object.fromEntries(Object.entries(rooms).map(([roomId, sessions]) => [roomId, { sessions }])) };
      },
    },
    {
      method: 'DELETE',
      path: '/room_keys/keys',
      schema: VERSION_QUERY,
      handler: (req) => answer(() => backups().deleteKeys(req.requester.userId, versionParam(req.query))),
    },

    // ---- keys: one room ----
    {
      method: 'PUT',
      path: '/room_keys/keys/:roomId',
      schema: { ...VERSION_QUERY, body: ROOM_KEY_BACKUP },
      handler: (req) =>
        answer(() =>
          backups().uploadKeys(req.requester.userId, versionParam(req.query), { [req.params.roomId]: req.body.sessions }),
        ),
    },
    {
      method: 'GET',
      path: '/room_keys/keys/:roomId',
      schema: VERSION_QUERY,
      handler: async (req) => {
        const { roomId } = req.params;
        const rooms = await answer(() => backups().getKeys(req.requester.userId, versionParam(req.query), { roomId }));
        return { sessions: rooms[roomId] ?? {} };
      },
    },
    {
      method: 'DELETE',
      path: '/room_keys/keys/:roomId',
      schema: VERSION_QUERY,
      handler: (req) =>
        answer(() => backups().deleteKeys(req.requester.userId, versionParam(req.query), { roomId: req.params.roomId })),
    },

    // ---- keys: one session ----
    {
      method: 'PUT',
      path: '/room_keys/keys/:roomId/:sessionId',
      schema: { ...VERSION_QUERY, body: KEY_BACKUP_DATA },
      handler: (req) => {
        const { roomId, sessionId } = req.params;
        return answer(() =>
          backups().uploadKeys(req.requester.userId, versionParam(req.query), { [roomId]: { [sessionId]: req.body } }),
        );
      },
    },
    {
      method: 'GET',
      path: '/room_keys/keys/:roomId/:sessionId',
      schema: VERSION_QUERY,
      handler: (req) =>
        answer(() => backups().getKey(req.requester.userId, versionParam(req.query), req.params.roomId, req.params.sessionId)),
    },
    {
      method: 'DELETE',
      path: '/room_keys/keys/:roomId/:sessionId',
      schema: VERSION_QUERY,
      handler: (req) => {
        const { roomId, sessionId } = req.params;
        return answer(() => backups().deleteKeys(req.requester.userId, versionParam(req.query), { roomId, sessionId }));
      },
    },
  ];
}
