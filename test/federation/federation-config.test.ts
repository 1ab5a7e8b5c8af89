// The `federation` config keys, their environment overrides, and `federation.enabled: false`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/validate.js';
import { generateSigningKey, publicKeyBase64, verifyJsonSignature } from '../../src/core/signing.js';
import { OwnServerKeys } from '../../src/federation/keys/own-keys.js';
import { startTestServer } from '../helpers/server.js';

function configFile(content: Record<string, unknown>): { file: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-fedcfg-'));
  const file = join(dir, 'hearth.yaml');
  writeFileSync(file, YAML.stringify({ data_dir: dir, ...content }));
  return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('defaults, the resolve map from the file and HEARTH_FEDERATION_RESOLVE / _VERIFY_TLS on top', () => {
  const { file, cleanup } = configFile({ federation: { resolve: { 'a.test': 'http://127.0.0.1:1111' } } });
  try {
    const plain = loadConfig({ file, env: {} }).config.federation;
    assert.deepEqual(plain, { enabled: true, resolve: { 'a.test': 'http://127.0.0.1:1111' }, verify_tls: true, trusted_key_servers: [], old_verify_keys: {}, stored_edu_max_age_ms: 7 * 24 * 3600_000 });
    const env = { HEARTH_FEDERATION_RESOLVE: 'a.test=http://127.0.0.1:8481, b.test=https://127.0.0.1:8482', HEARTH_FEDERATION_VERIFY_TLS: 'false' };
    const over = loadConfig({ file, env }).config.federation;
    assert.deepEqual(over.resolve, { 'a.test': 'http://127.0.0.1:8481', 'b.test': 'https://127.0.0.1:8482' });
    assert.equal(over.verify_tls, false);
    assert.throws(() => loadConfig({ file, env: { HEARTH_FEDERATION_RESOLVE: 'nonsense' } }), ConfigError);
    assert.throws(() => loadConfig({ file, env: { HEARTH_FEDERATION_RESOLVE: 'a.test=ftp://x' } }), /federation\.resolve/);
    assert.throws(() => loadConfig({ file, env: { HEARTH_FEDERATION_VERIFY_TLS: 'maybe' } }), ConfigError);
  } finally {
    cleanup();
  }
});

test('mistakes in the federation keys are reported by key', () => {
  for (const [federation, key] of [
    [{ enabled: 'yes' }, 'federation.enabled'],
    [{ resolve: { 'bad name!': 'http://x' } }, 'federation.resolve'],
    [{ trusted_key_servers: ['ok.test', 'bad name'] }, 'federation.trusted_key_servers'],
    [{ old_verify_keys: { 'ed25519:old': { key: 'abc' } } }, 'federation.old_verify_keys'],
    [{ stored_edu_max_age_ms: 0 }, 'federation.stored_edu_max_age_ms'],
    [{ verfy_tls: false }, 'federation.verfy_tls'],
  ] as const) {
    const { file, cleanup } = configFile({ federation });
    try {
      assert.throws(() => loadConfig({ file, env: {} }), (e: unknown) => e instanceof ConfigError && e.key === key, JSON.stringify(federation));
    } finally {
      cleanup();
    }
  }
});

test('old keys from federation.old_verify_keys are served as old_verify_keys', () => {
  const key = generateSigningKey();
  const old = generateSigningKey();
  const own = new OwnServerKeys('me.test', key, { [old.keyId]: { key: publicKeyBase64(old), expired_ts: 1_600_000_000_000 } }, Date.now);
  const res = own.response() as any;
  assert.deepEqual(res.old_verify_keys, { [old.keyId]: { key: publicKeyBase64(old), expired_ts: 1_600_000_000_000 } });
  assert.ok(verifyJsonSignature(res, 'me.test', key.keyId, key.publicKey));
});

test('federation.enabled: false serves no federation endpoint', async () => {
  const server = await startTestServer({ serverName: 'off.test', config: { federation: { enabled: false } } });
  try {
    for (const path of ['/_matrix/key/v2/server', '/_matrix/federation/v1/version']) {
      const res = await server.request('GET', path);
      assert.equal(res.status, 404, path);
      assert.equal(res.body.errcode, 'M_UNRECOGNIZED');
    }
  } finally {
    await server.stop();
  }
});
