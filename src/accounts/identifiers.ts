import { MatrixError, badJson, missingParam } from '../http/errors.js';
import { userIdFromIdentifier } from './user-ids.js';

/** A third-party identifier a login names; the account it was added to (if any) is looked up by the caller. */
export interface NamedThreepid {
  medium: string;
  address: string;
}

/**
 * Whom a login or `m.login.password` auth dict names (spec: "Identifier
 * types"): `identifier` of type `m.id.user`, or the deprecated top-level
 * `user`; or the third-party identifier it names (`m.id.thirdparty`, or the
 * deprecated top-level `medium` and `address`). Phone numbers (`m.id.phone`)
 * are never added to accounts here, so they name nobody (undefined).
 */
export function identifiedUserId(dict: Record<string, unknown>, serverName: string): string | NamedThreepid | undefined {
  const id = dict.identifier;
  if (id !== undefined) {
    if (id === null || typeof id !== 'object' || Array.isArray(id)) throw badJson('identifier must be an object');
    const ident = id as Record<string, unknown>;
    switch (ident.type) {
      case 'm.id.user':
        if (typeof ident.user !== 'string') throw badJson('identifier.user must be a string');
        return userIdFromIdentifier(ident.user, serverName);
      case 'm.id.thirdparty':
        if (typeof ident.medium !== 'string' || typeof ident.address !== 'string') throw badJson('identifier.medium and identifier.address must be strings');
        return { medium: ident.medium, address: ident.address };
      case 'm.id.phone':
        return undefined;
      default:
        throw new MatrixError(400, 'M_UNKNOWN', 'Unknown login identifier type');
    }
  }
  if (dict.user !== undefined) {
    if (typeof dict.user !== 'string') throw badJson('user must be a string');
    return userIdFromIdentifier(dict.user, serverName);
  }
  if (dict.medium !== undefined || dict.address !== undefined) {
    if (typeof dict.medium !== 'string' || typeof dict.address !== 'string') throw badJson('medium and address must be strings');
    return { medium: dict.medium, address: dict.address };
  }
  throw missingParam('Missing identifier');
}
