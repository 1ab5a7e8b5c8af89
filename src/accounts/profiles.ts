import type { Context } from '../context.js';
import { serverNameOf } from '../core/ids.js';
import { MatrixError, forbidden, invalidParam, missingParam, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import { getProfileRow, updateProfileRow } from './profile-store.js';
import { searchText } from './search-text.js';
import type { ProfileRow } from './tables.js';

/**
 * The spec caps the whole profile at 64 KiB and keys at 255 bytes. It sets
 * no separate cap on display names and avatar URLs; these caps keep a
 * member event (which carries both) well inside the event size limit and
 * match what other servers enforce.
 */
const MAX_PROFILE_BYTES = 64 * 1024;
const MAX_KEY_BYTES = 255;
export const MAX_DISPLAYNAME_LENGTH = 256;
const MAX_AVATAR_URL_LENGTH = 1000;

export interface Profile {
  displayname?: string;
  avatar_url?: string;
}

type Fields = Record<string, unknown>;

function otherFields(row: ProfileRow): Fields {
  return row.fields ? (JSON.parse(row.fields) as Fields) : {};
}

function fullProfile(row: ProfileRow): Fields {
  const out: Fields = {};
  if (row.displayname !== null) out.displayname = row.displayname;
  if (row.avatar_url !== null) out.avatar_url = row.avatar_url;
  return Object.assign(out, otherFields(row));
}

/** Profiles (spec: "Profiles"): display name, avatar and, since v1.16, `m.tz` and custom fields. */
export class Profiles {
  constructor(private readonly ctx: Context) {}

  /** The server to ask for a remote user's profile (server-server query.yaml); undefined for a local user, or with federation off. */
  private remoteServer(userId: string): string | undefined {
    const server = serverNameOf(userId);
    return server !== undefined && server !== this.ctx.serverName && this.ctx.config.federation.enabled ? server : undefined;
  }

  /** Asked of the user's server; one that cannot be reached has no profile to show (404, as for an unknown user). */
  private async remoteProfile(server: string, userId: string, field?: string): Promise<Fields> {
    try {
      return await this.ctx.services.federation.queries.profile(server, userId, field);
    } catch (e) {
      if (e instanceof MatrixError && e.status >= 500) throw notFound(`The profile of ${userId} could not be fetched: ${e.message}`);
      throw e;
    }
  }

  /** A local user's profile row. */
  private async row(userId: string): Promise<ProfileRow> {
    const row = await getProfileRow(this.ctx.db, userId);
    if (!row) throw notFound('Profile not found');
    return row;
  }

  async getProfile(userId: string): Promise<Profile | null> {
    const row = await getProfileRow(this.ctx.db, userId);
    if (!row) return null;
    const p: Profile = {};
    if (row.displayname !== null) p.displayname = row.displayname;
    if (row.avatar_url !== null) p.avatar_url = row.avatar_url;
    return p;
  }

  async getAll(userId: string): Promise<Fields> {
    const remote = this.remoteServer(userId);
    if (remote !== undefined) return this.remoteProfile(remote, userId);
    return fullProfile(await this.row(userId));
  }

  async getField(userId: string, key: string): Promise<Fields> {
    const remote = this.remoteServer(userId);
    const all = remote !== undefined ? await this.remoteProfile(remote, userId, key) : fullProfile(await this.row(userId));
    if (!(key in all)) throw notFound('Profile field not set');
    return { [key]: all[key] };
  }

  async setField(requester: Requester, userId: string, key: string, body: Fields): Promise<object> {
    if (requester.userId !== userId) throw forbidden("Cannot set another user's profile");
    if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw new MatrixError(400, 'M_KEY_TOO_LARGE', 'Profile key is too long');
    if (!(key in body)) throw missingParam(`Missing ${key}`);
    const value = checkValue(key, body[key]);
    return this.write(userId, key, value);
  }

  async deleteField(requester: Requester, userId: string, key: string): Promise<object> {
    if (requester.userId !== userId) throw forbidden("Cannot change another user's profile");
    return this.write(userId, key, undefined);
  }

  /** `value` undefined removes the field. Member events follow when the name or avatar changed. */
  private async write(userId: string, key: string, value: unknown): Promise<object> {
    const row = await this.row(userId);
    if (key === 'displayname' || key === 'avatar_url') {
      const next = (value ?? null) as string | null;
      if (row[key] === next) return {};
      const set: Partial<ProfileRow> = { [key]: next };
      if (key === 'displayname') set.search_text = searchText(userId, next);
      await updateProfileRow(this.ctx.db, userId, set);
      await this.ctx.services.rooms.onProfileChanged(userId);
      return {};
    }
    const fields = otherFields(row);
    if (value === undefined) delete fields[key];
    else fields[key] = value;
    const json = Object.keys(fields).length > 0 ? JSON.stringify(fields) : null;
    const size = Buffer.byteLength(JSON.stringify({ ...fullProfile(row), ...fields }), 'utf8');
    if (value !== undefined && size > MAX_PROFILE_BYTES) throw new MatrixError(400, 'M_PROFILE_TOO_LARGE', 'The profile would exceed 64 KiB');
    await updateProfileRow(this.ctx.db, userId, { fields: json });
    return {};
  }
}

/** Validates a profile value by key; an empty or null name or avatar clears it. */
function checkValue(key: string, value: unknown): unknown {
  switch (key) {
    case 'displayname':
      if (value === null || value === '') return null;
      if (typeof value !== 'string') throw new MatrixError(400, 'M_BAD_JSON', 'displayname must be a string');
      if ([...value].length > MAX_DISPLAYNAME_LENGTH) throw invalidParam(`displayname is too long (max ${MAX_DISPLAYNAME_LENGTH})`);
      return value;
    case 'avatar_url':
      if (value === null || value === '') return null;
      if (typeof value !== 'string') throw new MatrixError(400, 'M_BAD_JSON', 'avatar_url must be a string');
      if (!value.startsWith('mxc://')) throw invalidParam('avatar_url must be an mxc:// URI');
      if (value.length > MAX_AVATAR_URL_LENGTH) throw invalidParam(`avatar_url is too long (max ${MAX_AVATAR_URL_LENGTH})`);
      return value;
    case 'm.tz':
      if (typeof value !== 'string') throw new MatrixError(400, 'M_BAD_JSON', 'm.tz must be a string');
      return value;
    default:
      return value;
  }
}
