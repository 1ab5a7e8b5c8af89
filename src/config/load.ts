import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import YAML from 'yaml';
import { defaultConfig, type EmailConfig, type HearthConfig, type RegistrationMode } from './schema.js';
import { ConfigError, validateConfig } from './validate.js';
import {
  decodeSigningKeyFile,
  encodeSigningKeyFile,
  generateSigningKey,
  type SigningKey,
} from '../core/signing.js';

export interface LoadedConfig {
  config: HearthConfig;
  /** The file the settings came from. */
  file: string;
  signingKey: SigningKey;
  /** Absolute paths derived from the config. */
  paths: { dataDir: string; database: string | null; signingKey: string };
  /** The PEM certificate chain and key to serve HTTPS with (config `tls`); absent: plain HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  /** True when the file was created by this call. */
  generated: boolean;
}

type Env = Record<string, string | undefined>;

function deepMerge<T>(base: T, over: unknown): T {
  if (over === null || typeof over !== 'object' || Array.isArray(over)) return base;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      b && typeof b === 'object' && !Array.isArray(b) && v && typeof v === 'object' && !Array.isArray(v)
        ? deepMerge(b, v)
        : v;
  }
  return out as T;
}

export function defaultConfigPath(env: Env = process.env): string {
  if (env.HEARTH_CONFIG) return resolve(env.HEARTH_CONFIG);
  return resolve(env.HEARTH_DATA_DIR ?? './data', 'hearth.yaml');
}

/** A fresh config file's text, with new secrets. */
export function generateConfigText(env: Env = process.env): string {
  const cfg = defaultConfig();
  applyEnv(cfg, env, '(environment)');
  cfg.registration_shared_secret = randomBytes(32).toString('base64url');
  cfg.form_secret = randomBytes(32).toString('base64url');
  // Left out unless given, so that the file does not pin a base URL the listen address may contradict.
  const written: Partial<HearthConfig> = { ...cfg };
  if (!cfg.public_baseurl) delete written.public_baseurl;
  const header =
    '# Hearth homeserver configuration. Every key is described in the README.\n' +
    '# Environment variables HEARTH_* override these values at start.\n';
  return header + YAML.stringify(written);
}

function applyEnv(cfg: HearthConfig, env: Env, file: string): void {
  // The server name says nothing about where clients reach the server (`http://<server name>/` is
  // port 80, which Hearth does not listen on): without a public_baseurl the base URL is derived
  // from the listen address when it is served (see `clientBaseUrl`).
  if (env.HEARTH_SERVER_NAME) cfg.server_name = env.HEARTH_SERVER_NAME;
  if (env.HEARTH_PUBLIC_BASEURL) cfg.public_baseurl = env.HEARTH_PUBLIC_BASEURL;
  if (env.HEARTH_LISTEN) cfg.listen = env.HEARTH_LISTEN;
  if (env.HEARTH_DATA_DIR) cfg.data_dir = env.HEARTH_DATA_DIR;
  if (env.HEARTH_DATABASE_URL) cfg.database.url = env.HEARTH_DATABASE_URL;
  if (env.HEARTH_REGISTRATION) cfg.registration = env.HEARTH_REGISTRATION as RegistrationMode;
  if (env.HEARTH_LOG_LEVEL) cfg.log_level = env.HEARTH_LOG_LEVEL as HearthConfig['log_level'];
  if (env.HEARTH_RATE_LIMITS) {
    const v = env.HEARTH_RATE_LIMITS;
    if (v !== 'on' && v !== 'off') throw new ConfigError(file, 'HEARTH_RATE_LIMITS', 'must be "on" or "off"');
    cfg.rate_limits.enabled = v === 'on';
  }
  if (env.HEARTH_FEDERATION_RESOLVE) {
    // "a.test=http://127.0.0.1:8481,b.test=https://127.0.0.1:8482", on top of federation.resolve.
    const resolve = { ...cfg.federation.resolve };
    for (const entry of env.HEARTH_FEDERATION_RESOLVE.split(',').map((s) => s.trim()).filter(Boolean)) {
      const eq = entry.indexOf('=');
      if (eq <= 0) throw new ConfigError(file, 'HEARTH_FEDERATION_RESOLVE', `"${entry}" is not server.name=URL`);
      resolve[entry.slice(0, eq).trim()] = entry.slice(eq + 1).trim();
    }
    cfg.federation.resolve = resolve;
  }
  if (env.HEARTH_FEDERATION_VERIFY_TLS) {
    const v = env.HEARTH_FEDERATION_VERIFY_TLS;
    if (v !== 'true' && v !== 'false') throw new ConfigError(file, 'HEARTH_FEDERATION_VERIFY_TLS', 'must be "true" or "false"');
    cfg.federation.verify_tls = v === 'true';
  }
}

/**
 * Reads the config file (creating it with fresh secrets on first start),
 * applies HEARTH_* overrides, validates, and loads or creates the signing key.
 */
export function loadConfig(opts: { file?: string; env?: Env; create?: boolean } = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ? resolve(opts.file) : defaultConfigPath(env);
  let generated = false;
  if (!existsSync(file)) {
    if (opts.create === false) throw new ConfigError(file, '(file)', 'does not exist; run `hearth generate-config`');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, generateConfigText(env), { mode: 0o600 });
    generated = true;
  }
  let raw: unknown;
  try {
    raw = YAML.parse(readFileSync(file, 'utf8')) ?? {};
  } catch (e) {
    throw new ConfigError(file, '(file)', `is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(file, '(file)', 'must be a mapping of keys to values');
  const cfg = deepMerge(defaultConfig(), raw);
  applyEnv(cfg, env, file);
  validateConfig(cfg, file, raw);
  // `email` is a whole mapping (null by default), so its optional keys get their defaults here.
  if (cfg.email) {
    const given: Partial<EmailConfig> = cfg.email;
    cfg.email = { ...{ smtp_port: 587, smtp_user: '', smtp_pass: '', require_transport_security: false, client_base_url: '' }, ...given } as EmailConfig;
  }

  // Relative paths in the file are relative to the data dir, which is relative to the cwd.
  const dataDir = resolve(cfg.data_dir);
  const inData = (p: string) => (isAbsolute(p) ? p : join(dataDir, p));
  const isPg = /^postgres(ql)?:\/\//.test(cfg.database.url);
  const paths = {
    dataDir,
    database: isPg ? null : cfg.database.url === ':memory:' ? ':memory:' : inData(cfg.database.url),
    signingKey: inData(cfg.signing_key_path),
  };
  mkdirSync(dataDir, { recursive: true });
  let signingKey: SigningKey;
  if (existsSync(paths.signingKey)) {
    try {
      signingKey = decodeSigningKeyFile(readFileSync(paths.signingKey, 'utf8'));
    } catch (e) {
      throw new ConfigError(file, 'signing_key_path', `${paths.signingKey} is not a valid signing key: ${(e as Error).message}`);
    }
  } else {
    signingKey = generateSigningKey();
    writeFileSync(paths.signingKey, encodeSigningKeyFile(signingKey) + '\n', { mode: 0o600 });
  }
  return { config: cfg, file, signingKey, paths, generated, tls: loadTls(cfg, file, inData) };
}

function loadTls(cfg: HearthConfig, file: string, inData: (p: string) => string): { cert: Buffer; key: Buffer } | undefined {
  const { certificate_path: cert, private_key_path: key } = cfg.tls;
  if (!cert && !key) return undefined;
  if (!cert || !key) throw new ConfigError(file, cert ? 'tls.private_key_path' : 'tls.certificate_path', 'must be set together with the other tls path');
  const read = (p: string, name: string) => {
    try {
      return readFileSync(inData(p));
    } catch (e) {
      throw new ConfigError(file, name, `${inData(p)} cannot be read: ${(e as Error).message}`);
    }
  };
  return { cert: read(cert, 'tls.certificate_path'), key: read(key, 'tls.private_key_path') };
}
