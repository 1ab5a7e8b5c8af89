/** Who is making an authenticated client request. */
export interface Requester {
  userId: string;
  deviceId: string;
  isAdmin: boolean;
  /** A guest account (spec: modules/guest_access): only routes marked `guestAllowed` serve it. */
  isGuest?: boolean;
  /** The access token's row id, for logout. */
  tokenId: string;
  /** An administrator locked the account: only logout is served (client-server-api "Account locking"). */
  locked?: boolean;
  /** An administrator suspended the account: routes marked `refusedWhenSuspended` answer M_USER_SUSPENDED. */
  suspended?: boolean;
}
