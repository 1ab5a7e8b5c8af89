/** The `media` section of hearth.yaml: its defaults, and mistakes named by key. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/validate.js';

const dir = mkdtempSync(join(tmpdir(), 'hearth-media-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function load(media: unknown) {
  const file = join(dir, 'hearth.yaml');
  writeFileSync(file, YAML.stringify({ data_dir: dir, ...(media === undefined ? {} : { media }) }));
  return loadConfig({ file, env: {} });
}

describe('media config', () => {
  it('defaults: 50 MiB uploads, 1 GiB quota, no legacy freeze, no private preview ranges, local disk, 30-day remote cache', () => {
    assert.deepEqual(load(undefined).config.media, {
      max_upload_bytes: 50 * 1024 * 1024,
      user_quota_bytes: 1024 * 1024 * 1024,
      legacy_freeze_ts: null,
      url_preview_allow: [],
      s3: null,
      remote_cache_lifetime_ms: 30 * 24 * 3600_000,
      local_lifetime_ms: null,
      orphan_grace_ms: 24 * 3600_000,
      retention_interval_ms: 3600_000,
    });
    assert.equal(load({ legacy_freeze_ts: 1700000000000 }).config.media.legacy_freeze_ts, 1700000000000);
    const s3 = { bucket: 'media', region: 'eu-west-1', access_key_id: 'AK', secret_access_key: 'SK' };
    assert.deepEqual(load({ s3 }).config.media.s3, s3);
    assert.equal(load({ remote_cache_lifetime_ms: null }).config.media.remote_cache_lifetime_ms, null);
    assert.equal(load({ local_lifetime_ms: 90 * 24 * 3600_000 }).config.media.local_lifetime_ms, 90 * 24 * 3600_000);
  });

  it('mistakes are reported by key', () => {
    for (const [media, key] of [
      [{ max_upload_bytes: 0 }, 'media.max_upload_bytes'],
      [{ user_quota_bytes: '1G' }, 'media.user_quota_bytes'],
      [{ legacy_freeze_ts: 'yesterday' }, 'media.legacy_freeze_ts'],
      [{ url_preview_allow: ['10.0.0.0/33'] }, 'media.url_preview_allow'],
      [{ url_preview_allow: 'example.org' }, 'media.url_preview_allow'],
      [{ thumbnails: true }, 'media.thumbnails'],
      [{ local_lifetime_ms: -1 }, 'media.local_lifetime_ms'],
      [{ s3: 'bucket' }, 'media.s3'],
      [{ s3: { bucket: 'b', region: 'r', access_key_id: 'k' } }, 'media.s3'],
      [{ s3: { bucket: 'b', region: 'r', access_key_id: 'k', secret_access_key: 's', endpoint: 'ftp://x' } }, 'media.s3'],
      [{ remote_cache_lifetime_ms: -1 }, 'media.remote_cache_lifetime_ms'],
      [{ orphan_grace_ms: null }, 'media.orphan_grace_ms'],
      [{ retention_interval_ms: 0 }, 'media.retention_interval_ms'],
    ] as const) {
      assert.throws(() => load(media), (e: unknown) => e instanceof ConfigError && e.key === key, JSON.stringify(media));
    }
  });
});
