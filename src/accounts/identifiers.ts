import { MatrixError, badJson, missingParam } from '../http/errors.js';
import { userIdFromIdentifier } from './user-ids.js';

/**
 * Whom a login or `m.login.password` auth dict names (spec: "Identifier
 * types"): `identifier` of type `m.id.user`, or the deprecated top-level
 * `user`. Third-party identifiers are understood but this server binds none,
 * so they never name anyone (`userId` undefined, answered as a failed login).
 */
export function identifiedUserId(dict: Record<string, unknown>, serverName: string): string | undefined {
  const id = dict.identifier;
  if (id !== undefined) {
    if (id === null || typeof id !== 'object' || Array.isArray(id)) throw badJson('identifier must be an object');
    const ident = id as Record<string, unknown>;
    switch (ident.type) {
      case 'm.id.user':
        if (typeof ident.user !== 'string') throw badJson('identifier.user must be a string');
        return userIdFromIdentifier(ident.user, serverName);
      case 'm.id.thirdparty':
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
  if (dict.medium !== undefined || dict.address !== undefined) return undefined;
  throw missingParam('Missing identifier');
}
