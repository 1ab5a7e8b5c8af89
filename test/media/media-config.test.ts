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
  it('defaults: 50 MiB uploads, 1 GiB quota, no legacy freeze, no private preview ranges', () => {
    assert.deepEqual(load(undefined).config.media, {
      max_upload_bytes: 50 * 1024 * 1024,
      user_quota_bytes: 1024 * 1024 * 1024,
      legacy_freeze_ts: null,
      url_preview_allow: [],
    });
    assert.equal(load({ legacy_freeze_ts: 1700000000000 }).config.media.legacy_freeze_ts, 1700000000000);
  });

  it('mistakes are reported by key', () => {
    for (const [media, key] of [
      [{ max_upload_bytes: 0 }, 'media.max_upload_bytes'],
      [{ user_quota_bytes: '1G' }, 'media.user_quota_bytes'],
      [{ legacy_freeze_ts: 'yesterday' }, 'media.legacy_freeze_ts'],
      [{ url_preview_allow: ['10.0.0.0/33'] }, 'media.url_preview_allow'],
      [{ url_preview_allow: 'example.org' }, 'media.url_preview_allow'],
      [{ thumbnails: true }, 'media.thumbnails'],
    ] as const) {
      assert.throws(() => load(media), (e: unknown) => e instanceof ConfigError && e.key === key, JSON.stringify(media));
    }
  });
});
