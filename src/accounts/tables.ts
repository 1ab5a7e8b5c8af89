declare module '../db/schema.js' {
  interface Tables {
    users: UserRow;
    devices: DeviceRow;
    access_tokens: AccessTokenRow;
    refresh_tokens: RefreshTokenRow;
    profiles: ProfileRow;
    uia_sessions: UiaSessionRow;
    registration_nonces: RegistrationNonceRow;
    threepid_validation_sessions: ThreepidValidationSessionRow;
    user_threepids: UserThreepidRow;
    threepid_id_server_binds: ThreepidIdServerBindRow;
  }
}

export interface UserRow {
  user_id: string;
  /** `scrypt$N$r$p$salt$hash` (base64url parts); null once deactivated or for password-less users. */
  password_hash: string | null;
  is_admin: number;
  deactivated: number;
  created_ts: number;
  /** 1 while an administrator has locked the account: every request but logout answers M_USER_LOCKED. */
  locked: number;
  /** 1 while an administrator has suspended the account: joins, invites, messages and profile changes answer M_USER_SUSPENDED. */
  suspended: number;
  /** 1 for a guest account (spec: modules/guest_access) until it is upgraded by registering. */
  is_guest: number;
}

export interface DeviceRow {
  user_id: string;
  device_id: string;
  display_name: string | null;
  last_seen_ts: number | null;
  last_seen_ip: string | null;
}

export interface AccessTokenRow {
  id: string;
  /** sha256 of the token, hex: the token itself is never stored. */
  token_hash: string;
  user_id: string;
  device_id: string;
  created_ts: number;
  /** Null for tokens issued to clients that do not use refresh tokens. */
  expires_ts: number | null;
  /** The refresh token issued together with this access token. */
  refresh_token_id: string | null;
}

export interface RefreshTokenRow {
  id: string;
  token_hash: string;
  user_id: string;
  device_id: string;
  created_ts: number;
  /** Set once this token was exchanged; the token stays usable until its successor is used. */
  next_token_id: string | null;
}

export interface ProfileRow {
  user_id: string;
  displayname: string | null;
  avatar_url: string | null;
  /** JSON object of the other profile fields (`m.tz`, custom keys); null when there are none. */
  fields: string | null;
  /** Lower-cased words of the user id and display name, each preceded by a space, for prefix search. */
  search_text: string;
}

export interface UiaSessionRow {
  session_id: string;
  /** The authenticated user the session belongs to; null for registration. */
  user_id: string | null;
  method: string;
  path: string;
  /** sha256 of the canonical request body without `auth`; null until a non-empty body claims the session. */
  body_hash: string | null;
  /** JSON array of completed stage types, in order. */
  completed: string;
  /** JSON object: the `params` sent with the flows. */
  params: string;
  created_ts: number;
  /** JSON object: stage type to what the completed stage established (e.g. the validated address). */
  results: string;
}

export interface RegistrationNonceRow {
  nonce: string;
  created_ts: number;
}

export interface ThreepidValidationSessionRow {
  sid: string;
  /** Only `email`: this server sends no SMS. */
  medium: string;
  /** Lower-cased email address. */
  address: string;
  client_secret: string;
  /** The highest `send_attempt` a token was sent for; a request with a lower or equal one sends nothing. */
  last_send_attempt: number;
  /** sha256 of the token sent, hex. */
  token_hash: string;
  next_link: string | null;
  /** When the token was submitted; null until then. */
  validated_ts: number | null;
  created_ts: number;
}

export interface UserThreepidRow {
  medium: string;
  address: string;
  user_id: string;
  validated_ts: number;
  added_ts: number;
}

export interface ThreepidIdServerBindRow {
  user_id: string;
  medium: string;
  address: string;
  id_server: string;
}
