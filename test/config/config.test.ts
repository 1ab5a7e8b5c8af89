import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/validate.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'hearth-cfg-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('configuration', () => {
  it('first start writes a config with fresh secrets and a signing key', () => {
    const dir = tempDir();
    const a = loadConfig({ env: { HEARTH_DATA_DIR: dir } });
    assert.equal(a.generated, true);
    assert.ok(existsSync(join(dir, 'hearth.yaml')));
    assert.ok(existsSync(join(dir, 'signing.key')));
    assert.ok(a.config.registration_shared_secret.length >= 32);
    assert.equal(a.config.server_name, 'localhost');
    assert.equal(a.config.listen, 'localhost:8008');
    const b = loadConfig({ env: { HEARTH_DATA_DIR: dir } });
    assert.equal(b.generated, false);
    assert.equal(b.config.registration_shared_secret, a.config.registration_shared_secret);
    assert.equal(b.signingKey.keyId, a.signingKey.keyId);
    const other = loadConfig({ env: { HEARTH_DATA_DIR: tempDir() } });
    assert.notEqual(other.config.registration_shared_secret, a.config.registration_shared_secret);
  });

  it('environment variables override the file', () => {
    const dir = tempDir();
    const c = loadConfig({
      env: {
        HEARTH_DATA_DIR: dir,
        HEARTH_SERVER_NAME: 'example.org',
        HEARTH_LISTEN: '0.0.0.0:9000',
        HEARTH_DATABASE_URL: 'postgres://u@h/db',
        HEARTH_REGISTRATION: 'token',
        HEARTH_RATE_LIMITS: 'off',
      },
    });
    assert.equal(c.config.server_name, 'example.org');
    assert.equal(c.config.listen, '0.0.0.0:9000');
    assert.equal(c.config.database.url, 'postgres://u@h/db');
    assert.equal(c.paths.database, null);
    assert.equal(c.config.registration, 'token');
    assert.equal(c.config.rate_limits.enabled, false);
  });

  it('a wrong value is reported with the file and the key', () => {
    const dir = tempDir();
    const file = join(dir, 'hearth.yaml');
    writeFileSync(file, YAML.stringify({ registration: 'sometimes' }));
    assert.throws(() => loadConfig({ file, env: { HEARTH_DATA_DIR: dir } }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.key, 'registration');
      assert.equal(e.file, file);
      assert.match(e.message, /closed, token, open/);
      return true;
    });
  });

  it('an unknown key is reported as a likely typo', () => {
    const dir = tempDir();
    const file = join(dir, 'hearth.yaml');
    writeFileSync(file, YAML.stringify({ rate_limits: { enabeld: false } }));
    assert.throws(() => loadConfig({ file, env: {} }), /rate_limits\.enabeld/);
  });

  it('invalid YAML and a bad listen address are explained', () => {
    const dir = tempDir();
    const file = join(dir, 'hearth.yaml');
    writeFileSync(file, 'server_name: [unclosed');
    assert.throws(() => loadConfig({ file, env: {} }), /not valid YAML/);
    writeFileSync(file, YAML.stringify({ listen: 'nonsense' }));
    assert.throws(() => loadConfig({ file, env: {} }), /listen/);
  });

  it('HEARTH_RATE_LIMITS accepts only on/off', () => {
    assert.throws(() => loadConfig({ env: { HEARTH_DATA_DIR: tempDir(), HEARTH_RATE_LIMITS: 'maybe' } }), /HEARTH_RATE_LIMITS/);
  });

  it('the generated file is readable YAML with every documented section', () => {
    const dir = tempDir();
    loadConfig({ env: { HEARTH_DATA_DIR: dir } });
    const parsed = YAML.parse(readFileSync(join(dir, 'hearth.yaml'), 'utf8'));
    for (const k of ['server_name', 'listen', 'database', 'registration', 'rate_limits', 'caches']) assert.ok(k in parsed, k);
  });

  it('email: the optional keys get defaults; a missing or misspelt key and a bad From are named', () => {
    const dir = tempDir();
    const file = join(dir, 'hearth.yaml');
    writeFileSync(file, YAML.stringify({ email: { smtp_host: 'mail.example.org', notif_from: 'Hearth <noreply@example.org>' }, identity_server: { trusted: ['id.example.org'] } }));
    const c = loadConfig({ file, env: { HEARTH_DATA_DIR: dir } });
    assert.deepEqual(c.config.email, {
      smtp_host: 'mail.example.org', smtp_port: 587, smtp_user: '', smtp_pass: '', require_transport_security: false,
      notif_from: 'Hearth <noreply@example.org>', client_base_url: '',
    });
    assert.deepEqual(c.config.identity_server, { trusted: ['id.example.org'], resolve: {} });
    const bad = (email: unknown, pattern: RegExp) => {
      writeFileSync(file, YAML.stringify({ email }));
      assert.throws(() => loadConfig({ file, env: { HEARTH_DATA_DIR: dir } }), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.key, 'email');
        assert.match(e.message, pattern);
        return true;
      });
    };
    bad({ notif_from: 'a@b.c' }, /smtp_host/);
    bad({ smtp_host: 'h', notif_from: 'nobody' }, /notif_from/);
    bad({ smtp_host: 'h', notif_from: 'a@b.c', smtp_prot: 25 }, /smtp_prot is not a known setting/);
    bad({ smtp_host: 'h', notif_from: 'a@b.c', smtp_port: 70000 }, /smtp_port/);
    bad({ smtp_host: 'h', notif_from: 'a@b.c', smtp_user: 'u' }, /smtp_user and smtp_pass/);
    writeFileSync(file, YAML.stringify({ identity_server: { trusted: ['not a name'] } }));
    assert.throws(() => loadConfig({ file, env: { HEARTH_DATA_DIR: dir } }), /identity_server\.trusted/);
  });
});
