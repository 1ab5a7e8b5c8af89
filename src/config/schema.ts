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
  /**
   * The URL clients reach, served in `/.well-known/matrix/client`. Empty: derived from `listen`
   * (and `server_name` when listening on all interfaces) by `clientBaseUrl`.
   */
  public_baseurl: string;
  /** host:port to listen on. */
  listen: string;
  /**
   * Serve HTTPS on `listen` (client and federation APIs alike) with this PEM certificate chain and
   * key; both empty: plain HTTP (behind a TLS-terminating proxy). Relative to data_dir.
   */
  tls: { certificate_path: string; private_key_path: string };
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
    /** Managing and listing delayed events (MSC4140: restart heartbeats, send, cancel, lookups). */
    delayed_events: RateLimit;
  };
  /** Largest JSON request body accepted, in bytes. */
  max_request_bytes: number;
  /** Access token lifetime when a client asks for a refresh token, in ms. */
  access_token_lifetime_ms: number;
  caches: {
    /** Parsed events kept in memory. */
    events: number;
    /** Events' client-facing parts (no signatures, hashes or graph edges) kept in memory, for /sync. */
    client_events: number;
    /** Room states kept in memory. */
    room_states: number;
    /** Access tokens kept in memory. */
    access_tokens: number;
  };
  log_level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Allow presence updates to be shared. */
  presence_enabled: boolean;
  /** An online user with no activity for this long becomes `unavailable` (spec: "Idle timeout"). */
  presence_idle_timeout_ms: number;
  /** A user with no sync and no activity for this long becomes `offline`. */
  presence_offline_timeout_ms: number;
  media: {
    /** Largest upload accepted, in bytes (`m.upload.size`). */
    max_upload_bytes: number;
    /** Bytes of media one user may have stored. */
    user_quota_bytes: number;
    /**
     * Unauthenticated (legacy `/_matrix/media/v3`) downloads and thumbnails serve only media
     * uploaded before this time (ms since 1970). null: they serve everything.
     */
    legacy_freeze_ts: number | null;
    /** CIDRs that URL previews may fetch from although private (e.g. "10.1.0.0/16"). */
    url_preview_allow: string[];
    /** Store media in this S3-compatible bucket instead of `<data_dir>/media` (needed by a cluster). null: local disk. */
    s3: {
      /** Default: AWS's endpoint for the region. */
      endpoint?: string;
      bucket: string;
      region: string;
      access_key_id: string;
      secret_access_key: string;
      /** Default false. */
      force_path_style?: boolean;
    } | null;
    /** Other servers' media not served for this long is dropped from the cache (ms). null: kept. */
    remote_cache_lifetime_ms: number | null;
    /** This server's media not downloaded (nor thumbnailed) for this long is deleted (ms); null keeps it. */
    local_lifetime_ms: number | null;
    /** Stored files that no row refers to are deleted once older than this (ms). */
    orphan_grace_ms: number;
    /** How often the retention sweep (remote cache expiry, orphan files) runs (ms). */
    retention_interval_ms: number;
  };
  sliding_sync: {
    /** A sliding-sync connection unused this long (ms) expires: its next request is answered M_UNKNOWN_POS. */
    connection_idle_ms: number;
  };
  push: {
    /**
     * MSC4306's server-default push rules: messages in threads notify only those subscribed to the
     * thread (or mentioned). Off: threads notify as the spec's own rules say, for clients that do not subscribe.
     */
    thread_subscription_rules: boolean;
  };
  guests: {
    /** Allow guest accounts (spec: modules/guest_access): POST /register?kind=guest; off answers 403 M_GUEST_ACCESS_FORBIDDEN. */
    enabled: boolean;
  };
  delayed_events: {
    /** Serve MSC4140 delayed events (MatrixRTC keeps call membership alive with them). */
    enabled: boolean;
    /** Longest delay accepted, in ms; advertised in /capabilities. */
    max_delay_ms: number;
    /** Delayed events one user may have scheduled at once. */
    max_per_user: number;
  };
  turn: {
    /** TURN URIs handed to clients, e.g. "turn:turn.example.org:3478?transport=udp". Empty: no TURN. */
    uris: string[];
    /** coturn's `static-auth-secret` (use-auth-secret mode): credentials are signed with it. */
    shared_secret: string;
    /** Lifetime of issued credentials, in seconds. */
    ttl: number;
  };
  matrix_rtc: {
    /** MatrixRTC transports (MSC4143) offered to clients, e.g. `{type: livekit, livekit_service_url: https://...}`. */
    transports: Array<{ type: string; [key: string]: unknown }>;
  };
  /** Served at `/.well-known/matrix/support` (spec v1.10); with neither set, that answers 404. */
  support: {
    /** Ways to reach the administrators: `{role: m.role.admin, matrix_id?, email_address?}`. */
    contacts: Array<{ role: string; matrix_id?: string; email_address?: string }>;
    /** A page with help specific to this server. */
    support_page: string;
  };
  /** `POST /login/get_token`: a logged-in user makes a single-use token that logs another client in. */
  login_token: {
    enabled: boolean;
    /** How long a token stays valid (ms); the spec recommends 2 minutes. */
    lifetime_ms: number;
  };
  federation: {
    /** Serve the federation API and check received events with remote servers' fetched keys. */
    enabled: boolean;
    /** Server name to base URL, trusted as is (no discovery, no address checks): `{"b.test": "http://127.0.0.1:8482"}`. */
    resolve: Record<string, string>;
    /** Check remote servers' TLS certificates. */
    verify_tls: boolean;
    /** Notary servers asked for a server's keys when it does not answer itself. */
    trusted_key_servers: string[];
    /** Keys this server signed with before, served as `old_verify_keys`: key id to `{key, expired_ts}`. */
    old_verify_keys: Record<string, { key: string; expired_ts: number }>;
    /** Stored outbound EDUs (to-device, device lists, receipts) a server has not taken are dropped this long after they were stored (ms). */
    stored_edu_max_age_ms: number;
  };
  metrics: {
    /** Serve Prometheus metrics at `GET /metrics`. */
    enabled: boolean;
    /** Addresses (CIDRs) whose requests are answered; others get 403. Behind a proxy this is the proxy's address. */
    allow_from: string[];
    /** When set, a scrape must also send `Authorization: Bearer <token>`. */
    bearer_token: string;
  };
  /**
   * Outgoing email (SMTP), for validating addresses (registration, password reset, adding an
   * address to an account). null: no email is sent and those endpoints say so.
   */
  email: EmailConfig | null;
  /** Identity servers clients may name (`id_server`) for binds, unbinds and third-party invites. */
  /**
   * Server notices (client-server API "Server Notices"), sent with the admin API
   * `send_server_notice`. An empty `system_mxid_localpart` turns them off.
   */
  server_notices: {
    /** The localpart of the user that sends notices, made on first use. */
    system_mxid_localpart: string;
    /** The name of each user's notices room, and the display name of the system user. */
    room_name: string;
  };
  identity_server: {
    /** Server names (host[:port]) that may be used; empty: none, and those requests answer M_SERVER_NOT_TRUSTED. */
    trusted: string[];
    /** Server name to base URL, used as is (default `https://<name>`): `{"id.test": "http://127.0.0.1:8090"}`. */
    resolve: Record<string, string>;
  };
  cluster: {
    /**
     * Nodes sharing a PostgreSQL database: how long a lease outlives its last renewal (renewed
     * every third of it; a node that missed its heartbeats for this long is taken for gone).
     */
    lease_ttl_ms: number;
  };
}

export interface EmailConfig {
  smtp_host: string;
  /** Default 587. */
  smtp_port: number;
  /** Both empty: no SMTP authentication. */
  smtp_user: string;
  smtp_pass: string;
  /** Refuse to send unless the connection is TLS (implicit on port 465, STARTTLS otherwise). Default false. */
  require_transport_security: boolean;
  /** The From: of every email, e.g. "Hearth <noreply@example.org>". */
  notif_from: string;
  /** Where a validation link sends the browser afterwards when the client gave no `next_link`; empty: a plain page. */
  client_base_url: string;
}

export function defaultConfig(): HearthConfig {
  return {
    server_name: 'localhost',
    public_baseurl: '',
    listen: 'localhost:8008',
    data_dir: './data',
    database: { url: 'hearth.db', sqlite_synchronous: 'FULL', pool_size: 10 },
    signing_key_path: 'signing.key',
    tls: { certificate_path: '', private_key_path: '' },
    registration: 'closed',
    registration_tokens: [],
    registration_shared_secret: '',
    form_secret: '',
    rate_limits: {
      enabled: true,
      login: { per_second: 0.2, burst: 5 },
      registration: { per_second: 0.2, burst: 5 },
      message: { per_second: 10, burst: 50 },
      delayed_events: { per_second: 2, burst: 20 },
    },
    max_request_bytes: 1024 * 1024,
    access_token_lifetime_ms: 60 * 60 * 1000,
    caches: { events: 5000, client_events: 30000, room_states: 500, access_tokens: 10000 },
    log_level: 'info',
    presence_enabled: true,
    presence_idle_timeout_ms: 5 * 60_000,
    presence_offline_timeout_ms: 30_000,
    media: {
      max_upload_bytes: 50 * 1024 * 1024,
      user_quota_bytes: 1024 * 1024 * 1024,
      legacy_freeze_ts: null,
      url_preview_allow: [],
      s3: null,
      remote_cache_lifetime_ms: 30 * 24 * 3600_000,
      local_lifetime_ms: null,
      orphan_grace_ms: 24 * 3600_000,
      retention_interval_ms: 3600_000,
    },
    sliding_sync: { connection_idle_ms: 7 * 24 * 60 * 60 * 1000 },
    push: { thread_subscription_rules: false },
    guests: { enabled: true },
    delayed_events: { enabled: true, max_delay_ms: 24 * 60 * 60 * 1000, max_per_user: 100 },
    turn: { uris: [], shared_secret: '', ttl: 86400 },
    matrix_rtc: { transports: [] },
    support: { contacts: [], support_page: '' },
    login_token: { enabled: true, lifetime_ms: 120_000 },
    federation: { enabled: true, resolve: {}, verify_tls: true, trusted_key_servers: [], old_verify_keys: {}, stored_edu_max_age_ms: 7 * 24 * 3600_000 },
    metrics: { enabled: true, allow_from: ['127.0.0.0/8', '::1/128'], bearer_token: '' },
    email: null,
    server_notices: { system_mxid_localpart: '', room_name: 'Server Notices' },
    identity_server: { trusted: [], resolve: {} },
    cluster: { lease_ttl_ms: 15_000 },
  };
}
