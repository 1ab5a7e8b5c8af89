/**
 * The shape of hearth.yaml. Every key has a default so that a fresh install
 * needs no editing; `validateConfig` explains mistakes by file and key.
 */

export type RegistrationMode = 'closed' | 'token' | 'open';

export interface RateLimit {
  /** Sustained requests per second. */
  per_second: number;
  /** Requests allowed in a burst above the sustained rate. */
  burst: number;
}

export interface HearthConfig {
  server_name: string;
  public_baseurl: string;
  /** host:port to listen on. */
  listen: string;
  data_dir: string;
  database: {
    /** A SQLite file path (relative to data_dir) or a postgres:// URL. */
    url: string;
    /** SQLite: FULL survives power loss, NORMAL survives process crashes only. */
    sqlite_synchronous: 'FULL' | 'NORMAL';
    /** PostgreSQL connection pool size. */
    pool_size: number;
  };
  signing_key_path: string;
  registration: RegistrationMode;
  registration_tokens: string[];
  registration_shared_secret: string;
  /** Secret for values the server signs for itself (e.g. pagination tokens). */
  form_secret: string;
  rate_limits: {
    enabled: boolean;
    login: RateLimit;
    registration: RateLimit;
    message: RateLimit;
  };
  /** Largest JSON request body accepted, in bytes. */
  max_request_bytes: number;
  /** Access token lifetime when a client asks for a refresh token, in ms. */
  access_token_lifetime_ms: number;
  caches: {
    /** Parsed events kept in memory. */
    events: number;
    /** Room states kept in memory. */
    room_states: number;
    /** Access tokens kept in memory. */
    access_tokens: number;
  };
  log_level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Allow presence updates to be shared. */
  presence_enabled: boolean;
}

export function defaultConfig(): HearthConfig {
  return {
    server_name: 'localhost',
    public_baseurl: 'http://localhost:8008/',
    listen: 'localhost:8008',
    data_dir: './data',
    database: { url: 'hearth.db', sqlite_synchronous: 'FULL', pool_size: 10 },
    signing_key_path: 'signing.key',
    registration: 'closed',
    registration_tokens: [],
    registration_shared_secret: '',
    form_secret: '',
    rate_limits: {
      enabled: true,
      login: { per_second: 0.2, burst: 5 },
      registration: { per_second: 0.2, burst: 5 },
      message: { per_second: 10, burst: 50 },
    },
    max_request_bytes: 1024 * 1024,
    access_token_lifetime_ms: 60 * 60 * 1000,
    caches: { events: 20000, room_states: 500, access_tokens: 10000 },
    log_level: 'info',
    presence_enabled: true,
  };
}
