import { isCidrList } from '../http/outbound-guard.js';
import type { HearthConfig } from './schema.js';

/** A config mistake, named by file and key so the user can fix it without a stack trace. */
export class ConfigError extends Error {
  constructor(readonly file: string, readonly key: string, readonly problem: string) {
    super(`${file}: ${key}: ${problem}`);
  }
}

type Check = (value: unknown) => string | undefined;

const isString: Check = (v) => (typeof v === 'string' ? undefined : 'must be a string');
const isNonEmptyString: Check = (v) =>
  typeof v === 'string' && v.length > 0 ? undefined : 'must be a non-empty string';
const isBool: Check = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');
const isPositiveInt: Check = (v) =>
  Number.isInteger(v) && (v as number) > 0 ? undefined : 'must be a positive whole number';
const isPositiveNumber: Check = (v) =>
  typeof v === 'number' && v > 0 && Number.isFinite(v) ? undefined : 'must be a positive number';
const oneOf = (...allowed: string[]): Check => (v) =>
  typeof v === 'string' && allowed.includes(v) ? undefined : `must be one of: ${allowed.join(', ')}`;
const isStringList: Check = (v) =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') ? undefined : 'must be a list of strings';
const isListen: Check = (v) => {
  if (typeof v !== 'string') return 'must be a string like "localhost:8008"';
  const m = /^(.+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) return `"${v}" is not host:port (e.g. "0.0.0.0:8008")`;
  return undefined;
};
const isPositiveIntOrNull: Check = (v) =>
  v === null || (Number.isInteger(v) && (v as number) > 0) ? undefined : 'must be a positive whole number, or null';
const isCidrs: Check = (v) =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') && isCidrList(v)
    ? undefined
    : 'must be a list of CIDRs like "10.0.0.0/8" or "fd00::/8"';
const isServerName: Check = (v) => {
  if (typeof v !== 'string' || v.length === 0) return 'must be a server name like "example.org"';
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,255})(:\d{1,5})?$/.test(v)) {
    return `"${v}" is not a valid server name (a DNS name or IP, optionally with :port)`;
  }
  return undefined;
};
const isUrlOrEmpty: Check = (v) => {
  if (typeof v !== 'string') return 'must be a URL';
  if (v === '') return undefined;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:' ? undefined : 'must be an http(s) URL';
  } catch {
    return `"${v}" is not a URL`;
  }
};
const isServerNameList: Check = (v) =>
  Array.isArray(v) && v.every((x) => isServerName(x) === undefined) ? undefined : 'must be a list of server names';
const isResolveMap: Check = (v) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'must be a mapping of server names to base URLs';
  for (const [name, url] of Object.entries(v)) {
    const bad = isServerName(name) ?? (url === '' ? 'must be a URL' : isUrlOrEmpty(url));
    if (bad) return `${name}: ${bad}`;
  }
  return undefined;
};
const isOldVerifyKeys: Check = (v) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'must be a mapping of key ids to {key, expired_ts}';
  for (const [id, k] of Object.entries(v)) {
    const ok = /^ed25519:[A-Za-z0-9_]+$/.test(id) && k !== null && typeof k === 'object' && typeof k.key === 'string' && Number.isSafeInteger(k.expired_ts);
    if (!ok) return `${id}: must be a key id "ed25519:..." with {key: <unpadded base64>, expired_ts: <ms>}`;
  }
  return undefined;
};

const isTurnUris: Check = (v) =>
  Array.isArray(v) && v.every((x) => typeof x === 'string' && /^turns?:[^\s]+$/.test(x)) ? undefined : 'must be a list of turn: or turns: URIs';
const isTransports: Check = (v) =>
  Array.isArray(v) && v.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x) && typeof x.type === 'string' && x.type !== '')
    ? undefined
    : 'must be a list of objects, each with a "type"';
const isSupportContacts: Check = (v) => {
  const ok =
    Array.isArray(v) &&
    v.every(
      (c) =>
        c !== null && typeof c === 'object' && !Array.isArray(c) && typeof c.role === 'string' && c.role !== '' &&
        (typeof c.matrix_id === 'string' || typeof c.email_address === 'string') &&
        (c.matrix_id === undefined || (typeof c.matrix_id === 'string' && c.matrix_id.startsWith('@'))) &&
        (c.email_address === undefined || typeof c.email_address === 'string') &&
        Object.keys(c).every((k) => ['role', 'matrix_id', 'email_address'].includes(k)),
    );
  return ok ? undefined : 'must be a list of {role, matrix_id: "@...", email_address}, each with a role and at least one of the two';
};
const S3_KEYS: Record<string, Check> = {
  endpoint: (v) => (v === undefined ? undefined : isUrlOrEmpty(v)),
  bucket: isNonEmptyString,
  region: isNonEmptyString,
  access_key_id: isNonEmptyString,
  secret_access_key: isNonEmptyString,
  force_path_style: (v) => (v === undefined ? undefined : isBool(v)),
};
const isS3OrNull: Check = (v) => {
  if (v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) return `must be null or a mapping with ${Object.keys(S3_KEYS).join(', ')}`;
  for (const key of Object.keys(v)) if (!(key in S3_KEYS)) return `${key} is not a known setting (check the spelling)`;
  for (const [key, check] of Object.entries(S3_KEYS)) {
    const problem = check((v as Record<string, unknown>)[key]);
    if (problem) return `${key} ${problem}`;
  }
  return undefined;
};

const isPort: Check = (v) => (Number.isInteger(v) && (v as number) > 0 && (v as number) <= 65535 ? undefined : 'must be a port number (1-65535)');
const EMAIL_KEYS: Record<string, { check: Check; optional?: boolean }> = {
  smtp_host: { check: isNonEmptyString },
  smtp_port: { check: isPort, optional: true },
  smtp_user: { check: isString, optional: true },
  smtp_pass: { check: isString, optional: true },
  require_transport_security: { check: isBool, optional: true },
  notif_from: { check: (v) => (typeof v === 'string' && /\S+@\S+/.test(v) ? undefined : 'must be an address like "Hearth <noreply@example.org>"') },
  client_base_url: { check: isUrlOrEmpty, optional: true },
};
const isEmailOrNull: Check = (v) => {
  if (v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) return `must be null or a mapping with ${Object.keys(EMAIL_KEYS).join(', ')}`;
  for (const key of Object.keys(v)) if (!(key in EMAIL_KEYS)) return `${key} is not a known setting (check the spelling)`;
  for (const [key, { check, optional }] of Object.entries(EMAIL_KEYS)) {
    const value = (v as Record<string, unknown>)[key];
    if (value === undefined && optional) continue;
    const problem = check(value);
    if (problem) return `${key} ${problem}`;
  }
  if (((v as Record<string, unknown>).smtp_user ? 1 : 0) !== ((v as Record<string, unknown>).smtp_pass ? 1 : 0)) return 'smtp_user and smtp_pass go together';
  return undefined;
};

/** A user id localpart (appendices, "User Identifiers"), or '' for none. */
const isLocalpartOrEmpty: Check = (v) => (typeof v === 'string' && /^[a-z0-9._=\-/+]*$/.test(v) ? undefined : 'must be a localpart of a-z, 0-9 and ._=-/+ (or empty)');

/** Keys whose value is checked whole (a mapping with names of the user's choosing, or one rule for all its entries). */
const OPEN_MAPS = new Set(['federation.resolve', 'federation.old_verify_keys', 'media.s3', 'email', 'identity_server.resolve']);

const rules: Record<string, Check> = {
  server_name: isServerName,
  public_baseurl: isUrlOrEmpty,
  listen: isListen,
  data_dir: isNonEmptyString,
  'database.url': isNonEmptyString,
  'database.sqlite_synchronous': oneOf('FULL', 'NORMAL'),
  'database.pool_size': isPositiveInt,
  signing_key_path: isNonEmptyString,
  registration: oneOf('closed', 'token', 'open'),
  registration_tokens: isStringList,
  registration_shared_secret: isString,
  form_secret: isString,
  'tls.certificate_path': isString,
  'tls.private_key_path': isString,
  'rate_limits.enabled': isBool,
  'rate_limits.login.per_second': isPositiveNumber,
  'rate_limits.login.burst': isPositiveInt,
  'rate_limits.registration.per_second': isPositiveNumber,
  'rate_limits.registration.burst': isPositiveInt,
  'rate_limits.message.per_second': isPositiveNumber,
  'rate_limits.message.burst': isPositiveInt,
  'rate_limits.delayed_events.per_second': isPositiveNumber,
  'rate_limits.delayed_events.burst': isPositiveInt,
  max_request_bytes: isPositiveInt,
  access_token_lifetime_ms: isPositiveInt,
  'caches.events': isPositiveInt,
  'caches.client_events': isPositiveInt,
  'caches.room_states': isPositiveInt,
  'caches.access_tokens': isPositiveInt,
  log_level: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  presence_enabled: isBool,
  presence_idle_timeout_ms: isPositiveInt,
  presence_offline_timeout_ms: isPositiveInt,
  'media.max_upload_bytes': isPositiveInt,
  'media.user_quota_bytes': isPositiveInt,
  'media.legacy_freeze_ts': isPositiveIntOrNull,
  'media.url_preview_allow': isCidrs,
  'media.s3': isS3OrNull,
  'media.remote_cache_lifetime_ms': isPositiveIntOrNull,
  'media.local_lifetime_ms': isPositiveIntOrNull,
  'media.orphan_grace_ms': isPositiveInt,
  'media.retention_interval_ms': isPositiveInt,
  'sliding_sync.connection_idle_ms': isPositiveInt,
  'push.thread_subscription_rules': isBool,
  'guests.enabled': isBool,
  'delayed_events.enabled': isBool,
  'delayed_events.max_delay_ms': isPositiveInt,
  'delayed_events.max_per_user': isPositiveInt,
  'turn.uris': isTurnUris,
  'turn.shared_secret': isString,
  'turn.ttl': isPositiveInt,
  'matrix_rtc.transports': isTransports,
  'support.contacts': isSupportContacts,
  'support.support_page': isUrlOrEmpty,
  'login_token.enabled': isBool,
  'login_token.lifetime_ms': isPositiveInt,
  'federation.enabled': isBool,
  'federation.resolve': isResolveMap,
  'federation.verify_tls': isBool,
  'federation.trusted_key_servers': isServerNameList,
  'federation.old_verify_keys': isOldVerifyKeys,
  'federation.stored_edu_max_age_ms': isPositiveInt,
  'metrics.enabled': isBool,
  'metrics.allow_from': isCidrs,
  'metrics.bearer_token': isString,
  email: isEmailOrNull,
  'server_notices.system_mxid_localpart': isLocalpartOrEmpty,
  'server_notices.room_name': isNonEmptyString,
  'identity_server.trusted': isServerNameList,
  'identity_server.resolve': isResolveMap,
  'cluster.lease_ttl_ms': isPositiveInt,
};

function lookup(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Throws ConfigError for the first invalid or unknown key. */
export function validateConfig(cfg: HearthConfig, file: string, raw: unknown): void {
  for (const [key, check] of Object.entries(rules)) {
    const problem = check(lookup(cfg, key));
    if (problem) throw new ConfigError(file, key, problem);
  }
  // Unknown keys are almost always typos; saying so beats silently ignoring them.
  const known = new Set(Object.keys(rules).flatMap((k) => k.split('.').map((_, i, a) => a.slice(0, i + 1).join('.'))));
  const walk = (value: unknown, prefix: string): void => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (!known.has(key)) throw new ConfigError(file, key, 'is not a known setting (check the spelling)');
      if (!OPEN_MAPS.has(key)) walk(v, key);
    }
  };
  walk(raw, '');
}
