/** Who is making an authenticated client request. */
export interface Requester {
  userId: string;
  deviceId: string;
  isAdmin: boolean;
  /** The access token's row id, for logout. */
  tokenId: string;
}
